"""Monte Carlo comparison of methods (docs/model.md §10; Sun et al. 2025 §10.1).

Each run re-draws server locations and GPU types (as the paper does) and one arrival stream; every method
runs on that same draw and the same arrivals. Results are plain data: per-run summaries and per-request rows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.methods.registry import (
    Method,
    MethodContext,
    Profile,
    allocation_delay_ms,
)
from swarmplan.perf import memory
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.limits import clamp_workers
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import draw_workload
from swarmplan.sim.churn import churn_schedule
from swarmplan.sim.engine import SimResult
from swarmplan.sim.run import run_policy
from swarmplan.split.compare_methods import SPLIT_METRICS, SplitRun, is_split_method

CHURN_METRICS = (
    "affected_requests",
    "extra_latency_s",
    "recomputed_tokens",
    "waited_for_coverage",
    "unfinished_requests",
    "longest_coverage_outage_s",
)
METRICS = (
    "per_token_s",
    "ttft_s",
    "wait_s",
    "service_s",
    "response_mean_s",
    "response_p50_s",
    "response_p95_s",
    "response_p99_s",
    "max_concurrency",
    "mean_slot_utilisation",
)


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
            keys = METRICS + tuple(k for k in CHURN_METRICS + SPLIT_METRICS if k in runs[0])
            out[name] = {
                k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))} for k in keys
            }
        return out

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "profile": self.profile,
            "petals_cache_test": self.cache_test,
            "runs": self.runs,
            "requests": self.requests,
            "seed": self.seed,
            "methods": self.stats(),
            "per_run": self.per_run,
        }

    def write_requests_csv(self, path: Path) -> None:
        if not self.rows:
            return
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


def run_seeds(seed: int, run: int) -> list[np.random.Generator]:
    """Generators for run ``run``: swarm draw, arrivals, methods (PETALS' join order), churn. Children of one
    SeedSequence are fixed by their index, so adding the fourth left the first three draws unchanged."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, run]).spawn(4)]


def request_rows(run: int, result: SimResult, names: tuple[str, ...]) -> list[dict]:
    wl = result.workload
    resp, ttft = result.response_ms, result.ttft_ms
    return [
        {
            "run": run,
            "method": result.method,
            "request": r,
            "arrival_s": round(wl.arrival_ms[r] / 1000, 6),
            "input_tokens": int(wl.input_tokens[r]),
            "output_tokens": int(wl.output_tokens[r]),
            "chain": ">".join(names[j] for j in result.chains[r]),
            "blocks": ">".join(map(str, result.processed[r])),
            "wait_s": round(result.wait_ms[r] / 1000, 6),
            "ttft_s": round(ttft[r] / 1000, 6),
            "completion_s": round((wl.arrival_ms[r] + resp[r]) / 1000, 6),
            "response_s": round(resp[r] / 1000, 6),
            "per_token_s": round(resp[r] / wl.output_tokens[r] / 1000, 6),
        }
        for r in range(wl.n)
    ]


def run_once(
    scenario: Scenario,
    method_names: list[str],
    run: int,
    n_req: int,
    seed: int,
    profile: Profile,
    cache_test: str,
    base_dir: Path | None,
    keep_rows: bool,
    milp_time_limit_s: float = 30.0,
    overrides: dict | None = None,
) -> tuple[dict[str, dict], list[dict]]:
    """One Monte Carlo run: one swarm draw, one arrival stream and one churn schedule, every method on all three."""
    from swarmplan.methods.registry import get_methods

    swarm_rng, workload_rng, method_rng, churn_rng = run_seeds(seed, run)
    pm = PerfModel.from_swarm(realize(scenario, swarm_rng, base_dir))
    workload = draw_workload(scenario.workload, pm.swarm.n_clients, workload_rng, n_req, base_dir)
    churn = churn_schedule(scenario.churn, pm.swarm.server_names, float(workload.arrival_ms.max()), churn_rng)
    ctx = MethodContext(
        pm,
        method_rng,
        scenario.workload.rate_per_s,
        scenario.placement.R,
        cache_test,
        milp_time_limit_s=milp_time_limit_s,
        overrides=overrides or {},
    )
    split = SplitRun(scenario, pm, workload, seed, run) if scenario.split is not None else None
    if split is not None:  # every method serves the split's request types (docs/split.md §6.1)
        workload = split.workload
    summaries, rows = {}, []
    for name in filter(is_split_method, method_names):
        summaries[name] = split.run(name)
    regular = [n for n in method_names if not is_split_method(n)]
    for method in get_methods(regular) if regular or not method_names else []:  # no names: the defaults
        try:
            placement, policy = method.build(ctx)
        except SwarmplanError as err:
            raise SwarmplanError(err.field, f"run {run} ({method.name}): {err.problem}", err.fix) from None
        _check_servable(pm, placement, run, method.name)
        result = run_policy(
            pm,
            placement,
            workload,
            policy,
            allocation_delay_ms(method, profile, pm),
            method.name,
            churn,
            method.rejoin_hook(ctx) if churn else None,
        )
        summary = result.summary()
        summary.update(R=placement.R, bound_ms_per_token=placement.bound_ms_per_token)
        if hasattr(placement.details, "summary"):
            summary.update(placement.details.summary())
        if split is not None:
            summary.update(split.metrics(result))
        summaries[method.name] = summary
        if keep_rows:
            rows.extend(request_rows(run, result, pm.swarm.server_names))
    return summaries, rows


def _check_servable(pm: PerfModel, placement, run: int, name: str) -> None:
    """A placement no request can use is the input's fault: say so before simulating, not inside a router."""
    bare = np.flatnonzero(placement.coverage(pm.L) == 0)
    if bare.size:
        raise SwarmplanError(
            "servers",
            f"run {run} ({name}): the placement leaves block(s) {bare[0] + 1}–{bare[-1] + 1} on no server",
            "add servers or memory, or give fewer tokens per request",
        )
    if placement.memory_model == "petals" and memory.session_capacity_petals(pm.petals_cache_gb, pm.kv_gb) < 1:
        raise SwarmplanError(
            "model.attn_cache_tokens",
            f"run {run} ({name}): PETALS' attention cache per block "
            f"({memory.petals_attn_cache_tokens(pm.swarm.model)} tokens) is smaller than one request's "
            f"{pm.swarm.cache_tokens} tokens",
            "raise model.attn_cache_tokens, shorten requests or leave PETALS' methods out (--methods)",
        )


def compare(
    scenario: Scenario,
    methods: list[Method],
    runs: int,
    requests: int | None,
    seed: int,
    profile: Profile,
    cache_test: str = "petals",
    base_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    keep_rows: bool = True,
    jobs: int = 1,
    milp_time_limit_s: float = 30.0,
    overrides: dict | None = None,
) -> CompareResult:
    """Runs are seeded by (seed, run) alone, so the result does not depend on ``jobs`` (worker processes)."""
    n_req = requests or scenario.workload.n_requests
    names = [m.name for m in methods]
    res = CompareResult(scenario.name, profile, cache_test, runs, n_req, seed, names)
    args = [
        (scenario, names, run, n_req, seed, profile, cache_test, base_dir, keep_rows, milp_time_limit_s, overrides)
        for run in range(runs)
    ]
    outcomes: dict[int, tuple[dict, list]] = {}
    if jobs <= 1 or runs == 1:
        for run, a in enumerate(args):
            outcomes[run] = run_once(*a)
            if progress:
                progress(len(names))
    else:
        with ProcessPoolExecutor(max_workers=clamp_workers(jobs, runs)[0]) as pool:
            futures = {pool.submit(run_once, *a): run for run, a in enumerate(args)}
            for fut in as_completed(futures):
                outcomes[futures[fut]] = fut.result()
                if progress:
                    progress(len(names))
    res.per_run = {name: [outcomes[run][0][name] for run in range(runs)] for name in names}
    res.rows = [row for run in range(runs) for row in outcomes[run][1]]
    return res
