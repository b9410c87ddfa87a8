"""MILP scaling on instances grown from Abvt: solve time and gap of both formulations, and CG-BP / optimum.

Usage: python benchmarks/milp_scaling.py [--servers 5 10 20 30] [--requests 1 5 10 20] [--time-limit 30]
Servers sit at random Abvt nodes (shared nodes once there are more servers than nodes), 20 % A100 80GB
(--a100-fraction) and the rest MIG 1g.10gb, one client, BLOOM-176B. CG-BP uses R = the number of requests and is valued by the
routing ILP; the ratio is printed only where the optimum is proven.
"""

from __future__ import annotations

import argparse

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.milp import MilpOptions, solve_milp
from swarmplan.placement.registry import cgbp_warm_start
from swarmplan.routing.rrilp import route_concurrent
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.network import builtin_topology_path, network_from_edges, read_graphml
from swarmplan.scenario.realize import realize


def grown_abvt(n_servers: int, seed: int, a100_fraction: float = 0.2) -> PerfModel:
    rng = np.random.default_rng(seed)
    names = network_from_edges(*read_graphml(builtin_topology_path("Abvt"))).names
    client = int(rng.integers(len(names)))
    others = [i for i in range(len(names)) if i != client]
    nodes = rng.choice(others, size=n_servers, replace=n_servers > len(others))
    n_a100 = int(np.floor(a100_fraction * n_servers + 0.5))
    gpus = ["mig-1g-10gb"] * (n_servers - n_a100) + ["a100-80gb"] * n_a100
    sc = Scenario.model_validate(
        {
            "name": f"abvt-{n_servers}",
            "servers": [{"name": f"s{i:02d}", "gpu": g, "node": names[int(n)]} for i, (g, n) in enumerate(zip(gpus, nodes))],
            "clients": [{"name": "client", "node": names[client]}],
            "network": {"topology": "Abvt"},
        }
    )
    return PerfModel.from_swarm(realize(sc, rng))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, nargs="+", default=[5, 10, 20, 30])
    ap.add_argument("--requests", type=int, nargs="+", default=[1, 5, 10, 20])
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--a100-fraction", type=float, default=0.2, help="0 gives an all-MIG, memory-tight swarm")
    args = ap.parse_args()
    print(
        f"A100 fraction {args.a100_fraction:g}; time limit {args.time_limit:g} s per solve; gap = (objective − bound)/objective"
    )
    print(
        f"{'N':>3} {'R':>3} | {'layered: status':>16} {'time s':>7} {'gap':>8} {'obj ms':>8} | "
        f"{'reference: status':>18} {'time s':>7} {'gap':>8} {'obj ms':>8} | {'CG-BP/opt':>9}"
    )
    for n in args.servers:
        pm = grown_abvt(n, args.seed, args.a100_fraction)
        for R in args.requests:
            row = f"{n:>3} {R:>3} |"
            best = None
            for form in ("layered", "reference"):
                try:
                    res = solve_milp(pm, R, form, MilpOptions(time_limit_s=args.time_limit), warm_start=cgbp_warm_start(pm, R))
                except MemoryError:
                    row += f" {'out of memory':>16} {'':>7} {'':>8} {'':>8} |"
                    continue
                s = res.solution
                gap = "—" if s.gap is None else f"{100 * s.gap:.2f}%"
                obj = "—" if s.objective is None else f"{s.objective:.1f}"
                row += f" {s.status[:18]:>17} {s.seconds:7.1f} {gap:>8} {obj:>8} |"
                if s.status == "optimal" and best is None:
                    best = s.objective
            ratio = "—"
            try:
                value = route_concurrent(pm, cg_bp(pm, R), [R]).objective_ms
                if best is not None and value is not None:
                    ratio = f"{value / best:.4f}"
            except SwarmplanError:
                ratio = "infeasible"
            print(row + f" {ratio:>9}", flush=True)


if __name__ == "__main__":
    main()
