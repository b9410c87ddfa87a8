"""Placement time of CG-BP and PETALS for 100 and 1,000 servers on an 80-block model (Llama-2-70B).

Usage: python benchmarks/placement_speed.py [--servers 100 1000] [--repeat 5]
Servers: 20 % A100 80GB, 80 % L4 (estimate), random RTTs 5–150 ms to one client. Reported: the best of
--repeat runs per method, and each as a ratio to a baseline measured in the same process (sorting the
servers' amortised times, the cheapest step every greedy placement shares), so noise on this shared
machine largely cancels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.petals import petals_placement
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize


def swarm(n: int, seed: int = 0) -> PerfModel:
    rng = np.random.default_rng(seed)
    gpus = np.where(rng.random(n) < 0.2, "a100-80gb", "l4")
    sc = Scenario.model_validate(
        {
            "model": {"preset": "llama-2-70b"},
            "servers": [
                {"name": f"s{i}", "gpu": str(g), "rtt_ms": {"c": float(rng.uniform(5, 150))}} for i, g in enumerate(gpus)
            ],
            "clients": [{"name": "c"}],
        }
    )
    return PerfModel.from_swarm(realize(sc, rng))


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--R", type=int, default=20)
    args = ap.parse_args()
    for n in args.servers:
        pm = swarm(n)
        t_tilde = (pm.rtt_ms.max(axis=0) + pm.tau_ms * 10) / 10
        base = best_of(lambda: np.argsort(t_tilde, kind="stable"), args.repeat)
        cg = best_of(lambda: cg_bp(pm, args.R), args.repeat)
        pe = best_of(lambda: petals_placement(pm, rng=np.random.default_rng(1)), args.repeat)
        print(
            f"{n:5d} servers × {pm.L} blocks: CG-BP (R = {args.R}) {cg * 1000:8.1f} ms ({cg / base:,.0f}× sort baseline); "
            f"PETALS {pe * 1000:8.1f} ms ({pe / base:,.0f}×)"
        )


if __name__ == "__main__":
    main()
