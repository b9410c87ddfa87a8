"""Monte Carlo comparison of methods (docs/model.md §10; Sun et al. 2025 §10.1).

Each run re-draws server locations and GPU types (as the paper does) and one arrival stream; every method
runs on that same draw and the same arrivals. Results are plain data: per-run summaries and per-request rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.methods.registry import Method, MethodContext, Profile, allocation_delay_ms
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import draw_workload
from swarmplan.sim.engine import SimResult
from swarmplan.sim.run import run_policy

METRICS = ("per_token_s", "ttft_s", "wait_s", "service_s", "response_mean_s", "response_p50_s",
           "response_p95_s", "response_p99_s", "max_concurrency", "mean_slot_utilisation")


@dataclass
class CompareResult:
    scenario: str
    profile: Profile
    cache_test: str
    runs: int
    requests: int
    seed: int
    methods: list[str]
    per_run: dict[str, list[dict]] = field(default_factory=dict)  # method → summaries
    rows: list[dict] = field(default_factory=list)  # per-request records

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        out = {}
        for name in self.methods:
            runs = self.per_run[name]
            out[name] = {k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))}
                         for k in METRICS}
        return out

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "profile": self.profile, "petals_cache_test": self.cache_test,
                "runs": self.runs, "requests": self.requests, "seed": self.seed, "methods": self.stats(),
                "per_run": self.per_run}

    def write_requests_csv(self, path: Path) -> None:
        if not self.rows:
            return
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


def run_seeds(seed: int, run: int) -> list[np.random.Generator]:
    """Generators for run ``run``: swarm draw, arrivals, methods (PETALS' join order)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, run]).spawn(3)]


def request_rows(run: int, result: SimResult, names: tuple[str, ...]) -> list[dict]:
    wl = result.workload
    resp, ttft = result.response_ms, result.ttft_ms
    return [
        {"run": run, "method": result.method, "request": r, "arrival_s": round(wl.arrival_ms[r] / 1000, 6),
         "input_tokens": int(wl.input_tokens[r]), "output_tokens": int(wl.output_tokens[r]),
         "chain": ">".join(names[j] for j in result.chains[r]),
         "blocks": ">".join(map(str, result.processed[r])),
         "wait_s": round(result.wait_ms[r] / 1000, 6), "ttft_s": round(ttft[r] / 1000, 6),
         "completion_s": round((wl.arrival_ms[r] + resp[r]) / 1000, 6), "response_s": round(resp[r] / 1000, 6), "per_token_s": round(resp[r] / wl.output_tokens[r] / 1000, 6)}
        for r in range(wl.n)
    ]


def compare(scenario: Scenario, methods: list[Method], runs: int, requests: int | None, seed: int,
            profile: Profile, cache_test: str = "petals", base_dir: Path | None = None,
            progress: Callable[[], None] | None = None, keep_rows: bool = True) -> CompareResult:
    n_req = requests or scenario.workload.n_requests
    res = CompareResult(scenario.name, profile, cache_test, runs, n_req, seed, [m.name for m in methods])
    res.per_run = {m.name: [] for m in methods}
    for run in range(runs):
        swarm_rng, workload_rng, method_rng = run_seeds(seed, run)
        pm = PerfModel.from_swarm(realize(scenario, swarm_rng, base_dir))
        workload = draw_workload(scenario.workload, pm.swarm.n_clients, workload_rng, n_req, base_dir)
        ctx = MethodContext(pm, method_rng, scenario.workload.rate_per_s, scenario.placement.R, cache_test)
        for method in methods:
            try:
                placement, router = method.build(ctx)
            except SwarmplanError as err:
                raise SwarmplanError(err.field, f"run {run} ({method.name}): {err.problem}", err.fix) from None
            result = run_policy(pm, placement, workload, router, allocation_delay_ms(method, profile, pm), method.name)
            summary = result.summary()
            summary.update(R=placement.R, bound_ms_per_token=placement.bound_ms_per_token)
            if method.name == "gbp-cr":
                summary.update(c=ctx.chain_plan.c, overloaded=ctx.chain_plan.overloaded,
                               theorem4_bounds_s=[b / 1000 for b in ctx.chain_plan.bounds_ms or []])
            res.per_run[method.name].append(summary)
            if keep_rows:
                res.rows.extend(request_rows(run, result, pm.swarm.server_names))
            if progress:
                progress()
    return res
