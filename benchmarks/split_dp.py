"""Running time of the split DPs for 80 blocks × 1,000 requests, and how much the knapsack DP gains over greedy
as device budgets tighten (docs/split.md §5, §11).

Usage: python benchmarks/split_dp.py [--requests 1000] [--repeat 3]
The instance is split-edge with Llama-2-70B NF4 (80 blocks) on its A100 and SLAs scaled for the larger model. Timed: (a) the per-request layer DP
run once per request with a distinct prompt length (no caching), (b) the multiple-choice knapsack DP over all
requests' option lists, (c) the whole planning of a window (layer DP once per type × device class, knapsack
and greedy per device). Then split-edge (Llama-2-7B) with every device's budget scaled down.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.split.knapsack import budget_units, knapsack_min_work
from swarmplan.split.model import RequestType, build_split_model
from swarmplan.split.per_request import split_options, work_frontier
from swarmplan.split.plan import draw_requests, plan_window
from swarmplan.split.run import streams


def _load(sets):
    sc, base = load_scenario("split-edge", sets)
    rngs = streams(0)
    pm = PerfModel.from_swarm(realize(sc, rngs[0], base))
    return sc, build_split_model(sc, pm), rngs[1]


def timing(n: int, repeat: int) -> None:
    # Llama-2-70B steps take longer than 7B's on every device: SLAs scaled to stay feasible.
    sc, sm, rng = _load(
        [
            "model.preset=llama-2-70b",
            f"workload.n_requests={n}",
            "workload.rate_per_s=5",
            "split.request_types.0.sla_response_s=40",
            "split.request_types.0.sla_ttft_s=10",
            "split.request_types.1.sla_response_s=60",
            "split.request_types.1.sla_ttft_s=30",
            "split.request_types.2.sla_response_s=20",
        ]
    )
    print(f"model blocks L = {sm.L}, requests = {n}, device classes = {len(sm.devices)}")
    lengths = np.random.default_rng(1).integers(64, 2048, size=n)
    base_t, dev = sm.types[0], sm.devices[0]
    stacks = [
        sm.stack(RequestType(f"r{i}", int(a), base_t.output_tokens, 1.0, float("inf"), float("inf"), float("inf")), dev)
        for i, a in enumerate(lengths)
    ]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fronts = [work_frontier(split_options(s)) for s in stacks]
        best = min(best, time.perf_counter() - t0)
    print(
        f"(a) layer DP, {n} requests × {sm.L} blocks, uncached: {best:.3f} s "
        f"({best / n * 1e3:.2f} ms per request; {np.mean([len(f) for f in fronts]):.1f} frontier options each)"
    )
    unit = sum(f[-1].client_work_ms for f in fronts) / 2 / sm.budget_resolution  # a budget of half the full offload
    options = [[(budget_units(o.client_work_ms, unit), o.server_work_ms) for o in f] for f in fronts]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        knapsack_min_work(options, sm.budget_resolution)
        best = min(best, time.perf_counter() - t0)
    print(f"(b) knapsack DP, {n} requests on one device, budget {sm.budget_resolution} units: {best:.3f} s")
    req = draw_requests(sc, sm, rng)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan_window(sm, req)
        best = min(best, time.perf_counter() - t0)
    print(f"(c) plan_window (layer DP per type × device, knapsack + greedy per device): {best:.3f} s")


def budgets() -> None:
    print("\nsplit-edge (Llama-2-7B), every device's budget_fraction × scale:")
    print(f"{'scale':>6} {'server work vs all-on-server':>29} {'greedy':>8} {'throughput at SLA vs greedy':>28}")
    for scale in (1.0, 0.5, 0.25, 0.1, 0.05, 0.02):
        sc0, _ = load_scenario("split-edge")
        sets = [f"split.devices.{i}.budget_fraction={d.budget_fraction * scale:g}" for i, d in enumerate(sc0.split.devices)]
        sc, sm, rng = _load(sets)
        plan = plan_window(sm, draw_requests(sc, sm, rng))
        g = plan.results["greedy"]
        print(
            f"{scale:>6g} {plan.dp.server_work_fraction - 1:>+29.1%} {g.server_work_fraction - 1:>+8.1%} "
            f"{plan.throughput_gain_over_greedy:>+28.2%}"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    timing(args.requests, args.repeat)
    budgets()
