"""Simulated requests per second for cg-bprr and petals on paper-gtsce (60 servers).

Usage: python benchmarks/sim_throughput.py [--requests 100000] [--profile]
Target (issue 3): ≥ 20,000 requests/s on one core. Placement time is excluded; routing, booking and
metrics are included. A third line times the same run with the route cache disabled, as the baseline.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

from swarmplan.methods.registry import METHODS, MethodContext, allocation_delay_ms
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import draw_workload
from swarmplan.sim.engine import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--scenario", default="paper-gtsce")
    ap.add_argument("--profile", action="store_true", help="print where the time goes")
    args = ap.parse_args()
    sc, base = load_scenario(args.scenario)
    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))
    wl = draw_workload(sc.workload, 1, np.random.default_rng(1), args.requests, base)
    print(f"{args.scenario}: {pm.n_servers} servers, {args.requests} requests at {sc.workload.rate_per_s} req/s")
    for name, fast in (("cg-bprr", True), ("petals", True), ("cg-bprr", False)):
        ctx = MethodContext(pm, np.random.default_rng(2), sc.workload.rate_per_s, use_fast_path=fast)
        method = METHODS[name]
        placement, router = method.build(ctx)
        n = args.requests if fast else min(args.requests, 20_000)
        sub = wl.head(n)
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        res = simulate(pm, placement, sub, router, allocation_delay_ms(method, "fair", pm), name)
        if prof:
            prof.disable()
        dt = time.perf_counter() - t0
        label = name + ("" if fast else " (no route cache)")
        print(f"  {label:28s} {n / dt:10,.0f} requests/s  ({dt:.2f} s; mean per-token {res.per_token_ms.mean() / 1000:.3f} s)")
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(8)


if __name__ == "__main__":
    main()
