"""Simulated requests per second for every default method on paper-gtsce (60 servers), optionally beside
the same measurement of another revision in the same run.

Usage: python benchmarks/sim_throughput.py [--requests 30000] [--rate 0.5] [--against REV] [--profile]
Placement time is excluded; routing, booking and metrics are included. Times are CPU seconds of this
process (``time.process_time``), best of ``--repeat``, so that other load on a shared machine disturbs them
less. ``--against REV`` checks REV out into a temporary git worktree and runs the same measurement there in
a subprocess, alternating with this tree, and prints both and their ratio. The opt-rr row runs a tenth of the
requests (it is the slow one) and says so.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("petals", "petals-retry", "opt-order", "opt-num", "opt-rr", "cg-bprr", "gbp-cr", "cgbp-jffc")


def measure(requests: int, scenario: str, rate: float | None, repeat: int, profile: bool = False) -> dict[str, float]:
    from swarmplan.methods.registry import METHODS as TABLE
    from swarmplan.methods.registry import MethodContext, allocation_delay_ms
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize
    from swarmplan.scenario.workload import draw_workload
    from swarmplan.sim.run import run_policy

    sets = [f"workload.rate_per_s={rate}"] if rate else []
    sc, base = load_scenario(scenario, sets)
    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))
    wl = draw_workload(sc.workload, 1, np.random.default_rng(1), requests, base)
    out = {}
    for name in METHODS:
        method = TABLE[name]
        placement, policy = method.build(MethodContext(pm, np.random.default_rng(2), sc.workload.rate_per_s))
        sub = wl.head(max(requests // 10, 1)) if name == "opt-rr" else wl
        best = float("inf")
        for _ in range(repeat):
            prof = cProfile.Profile() if profile else None
            t0 = time.process_time()
            if prof:
                prof.enable()
            run_policy(pm, placement, sub, policy, allocation_delay_ms(method, "fair", pm), name)
            if prof:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(6)
            best = min(best, time.process_time() - t0)
        out[name] = sub.n / best
    return out


def measure_at(rev_tree: Path, args) -> dict[str, float]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import sim_throughput as b; "
        f"print(json.dumps(b.measure({args.requests}, {args.scenario!r}, {args.rate!r}, {args.repeat})))"
    )
    env = dict(os.environ, PYTHONPATH=str(rev_tree / "src"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30_000)
    ap.add_argument("--scenario", default="paper-gtsce")
    ap.add_argument("--rate", type=float, default=None, help="override the scenario's arrival rate (req/s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", default=None, help="a git revision to measure beside this tree")
    ap.add_argument("--rounds", type=int, default=2, help="alternations with --against")
    ap.add_argument("--profile", action="store_true", help="print where the time goes")
    args = ap.parse_args()
    print(
        f"{args.scenario}: {args.requests} requests (opt-rr: {args.requests // 10})"
        + (f" at {args.rate} req/s" if args.rate else "")
    )
    if args.against is None:
        for name, rps in measure(args.requests, args.scenario, args.rate, args.repeat, args.profile).items():
            print(f"  {name:14s} {rps:12,.0f} requests/s (CPU)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.against], check=True)
        try:
            base, here = {m: 0.0 for m in METHODS}, {m: 0.0 for m in METHODS}
            for _ in range(args.rounds):
                for acc, tree_ in ((base, tree), (here, ROOT)):
                    for m, v in measure_at(tree_, args).items():
                        acc[m] = max(acc[m], v)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    print(f"  {'method':14s} {args.against[:12]:>14s} {'this tree':>14s}  ratio")
    for m in METHODS:
        print(f"  {m:14s} {base[m]:14,.0f} {here[m]:14,.0f}  {here[m] / base[m]:.2f}")


if __name__ == "__main__":
    main()
