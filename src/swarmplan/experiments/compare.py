"""Monte Carlo comparison of methods (docs/model.md §10; Sun et al. 2025 §10.1).

Each run re-draws server locations and GPU types (as the paper does) and one arrival stream; every method
runs on that same draw and the same arrivals. Results are plain data: per-run summaries and per-request rows.
Per-request rows are either kept in memory (small runs) or streamed to a CSV a chunk at a time as each
method's run finishes (``requests_csv``; experiments.request_log), so 10⁶ requests do not mean 10⁶ row
dicts: what stays is one method's simulation of one run (docs/research.md §8).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.metrics import RUN_METRICS
from swarmplan.experiments.request_log import CHUNK_ROWS, RequestCsv, concatenate, request_rows
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
from swarmplan.sim.long_outputs import long_output_limit_of
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
METRICS = tuple(RUN_METRICS)  # experiments.metrics is the one list (experiments.store types it)


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
    rows: list[dict] = field(default_factory=list)  # per-request records (keep_rows)
    responses: dict[str, list[np.ndarray]] = field(default_factory=dict)  # method → response_s per run (keep_responses)
    requests_file: Path | None = None  # where the per-request rows were streamed (None: not streamed, or no rows)
    requests_written: int = 0
    most_rows_held: int = 0  # the most rows the stream ever had made at once (at most its chunk)

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        out = {}
        for name in self.methods:
            runs = self.per_run[name]
            keys = METRICS + tuple(k for k in CHURN_METRICS + SPLIT_METRICS if k in runs[0])
            out[name] = {k: _mean_std([r[k] for r in runs if k in r]) for k in keys}
        return out

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "profile": self.profile,
            "petals_cache_test": self.cache_test,
            "runs": self.runs,
            "requests": self.requests,
            "seed": self.seed,
            "methods": _nan_to_none(self.stats()),
            "per_run": self.per_run,
        }

    def write_requests_csv(self, path: Path) -> None:
        """The kept rows (keep_rows) as CSV; large runs stream instead (``compare(requests_csv=...)``)."""
        if not self.rows:
            return
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)

    def response_frame(self):
        """(method, response_s) of every request of every run, from the kept response times or rows."""
        import pandas as pd

        if self.responses:
            parts = [(m, r) for m in self.methods for r in self.responses.get(m, [])]
            return pd.DataFrame(
                {
                    "method": pd.Categorical(np.repeat([m for m, _ in parts], [len(r) for _, r in parts]), self.methods),
                    "response_s": np.concatenate([r for _, r in parts]) if parts else np.zeros(0),
                }
            )
        return pd.DataFrame(self.rows, columns=["method", "response_s"]) if self.rows else pd.DataFrame()


def _nan_to_none(stats: dict) -> dict:
    """NaN (no run has the metric) as JSON null."""
    return {m: {k: {a: None if np.isnan(v) else v for a, v in ms.items()} for k, ms in st.items()} for m, st in stats.items()}


def _mean_std(values: list[float]) -> dict[str, float]:
    """Mean and std over the runs that have the metric (a run whose requests churn left all unfinished has
    none); NaN when no run has it."""
    if not values:
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def run_seeds(seed: int, run: int) -> list[np.random.Generator]:
    """Generators for run ``run``: swarm draw, arrivals, methods (PETALS' join order), churn. Children of one
    SeedSequence are fixed by their index, so adding the fourth left the first three draws unchanged."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, run]).spawn(4)]


@dataclass
class RunSink:
    """Where one run's per-request results go as each method finishes: rows streamed to ``writer`` and, with
    ``keep_responses``, the response times (s, as in the rows) kept as one NumPy array per method."""

    writer: RequestCsv | None = None
    keep_responses: bool = False
    responses: dict[str, np.ndarray] = field(default_factory=dict)

    def __call__(self, run: int, result: SimResult, names: tuple[str, ...]) -> None:
        if self.writer is not None:
            self.writer.write(run, result, names)
        if self.keep_responses:
            self.responses[result.method] = np.round(result.response_ms / 1000, 6)


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
    sink: Callable[[int, SimResult, tuple[str, ...]], None] | None = None,
) -> tuple[dict[str, dict], list[dict]]:
    """One Monte Carlo run: one swarm draw, one arrival stream and one churn schedule, every method on all three.
    Each method's result goes to ``sink`` (if given) as soon as it is summarised, and is then dropped."""
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
        theta = long_output_limit_of(policy)
        if theta is not None:  # SLO-Pack's long-output limit (docs/capacity.md §5.5)
            summary["slo_pack_long_output_limit"] = float(theta)
        if split is not None:
            summary.update(split.metrics(result))
        summaries[method.name] = summary
        if keep_rows:
            rows.extend(request_rows(run, result, pm.swarm.server_names))
        if sink is not None:
            sink(run, result, pm.swarm.server_names)
        del result  # before the next method simulates: one method's per-request arrays at a time
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
    requests_csv: Path | None = None,
    keep_responses: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> CompareResult:
    """Runs are seeded by (seed, run) alone, so the result does not depend on ``jobs`` (worker processes).

    ``keep_rows`` keeps every per-request row in ``CompareResult.rows``; ``requests_csv`` streams them to that
    file instead (``chunk_rows`` at a time; in run, method, request order whatever ``jobs`` is: workers write
    one part per run and the parts are joined in run order); ``keep_responses`` keeps only the response times
    (one float per request and method, for the response-time CDF)."""
    n_req = requests or scenario.workload.n_requests
    names = [m.name for m in methods]
    res = CompareResult(scenario.name, profile, cache_test, runs, n_req, seed, names)
    args = [
        (scenario, names, run, n_req, seed, profile, cache_test, base_dir, keep_rows, milp_time_limit_s, overrides)
        for run in range(runs)
    ]
    streamed = requests_csv is not None or keep_responses
    outcomes: dict[int, tuple[dict, list]] = {}
    sinks: dict[int, RunSink] = {}
    parts_dir = None
    try:
        if jobs <= 1 or runs == 1:
            shared = RequestCsv(requests_csv, chunk=chunk_rows) if requests_csv is not None else None
            try:
                for run, a in enumerate(args):
                    sink = sinks[run] = RunSink(shared, keep_responses) if streamed else None
                    outcomes[run] = run_once(*a, sink=sink)
                    if progress:
                        progress(len(names))
            except BaseException:
                if shared is not None:
                    shared.discard()
                raise
            if shared is not None:
                res.requests_file = shared.close()
                res.requests_written, res.most_rows_held = shared.rows_written, shared.most_rows_held
        else:
            if requests_csv is not None:
                parts_dir = Path(tempfile.mkdtemp(prefix=f".{requests_csv.name}-parts-", dir=requests_csv.parent))
            part_sinks = [
                RunSink(
                    RequestCsv(parts_dir / f"run{run:06d}.csv", header=False, chunk=chunk_rows) if parts_dir else None,
                    keep_responses,
                )
                if streamed
                else None
                for run in range(runs)
            ]
            with ProcessPoolExecutor(max_workers=clamp_workers(jobs, runs)[0]) as pool:
                futures = {pool.submit(_run_into, a, part_sinks[run]): run for run, a in enumerate(args)}
                for fut in as_completed(futures):
                    run = futures[fut]
                    outcomes[run], sinks[run] = fut.result()
                    if progress:
                        progress(len(names))
            if parts_dir is not None:
                done = [sinks[run].writer for run in range(runs)]
                res.requests_file = concatenate([c.path for c in done], requests_csv)
                res.requests_written = sum(c.rows_written for c in done)
                res.most_rows_held = max(c.most_rows_held for c in done)
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    res.per_run = {name: [outcomes[run][0][name] for run in range(runs)] for name in names}
    res.rows = [row for run in range(runs) for row in outcomes[run][1]]
    if keep_responses:
        kept = [sinks[run].responses for run in range(runs)]
        res.responses = {name: [k[name] for k in kept if name in k] for name in names}
    return res


def _run_into(args: tuple, sink: RunSink | None) -> tuple[tuple[dict, list], RunSink | None]:
    """One run in a worker process; its rows go to the sink's own part file, closed before returning."""
    if sink is None:
        return run_once(*args), None
    try:
        outcome = run_once(*args, sink=sink)
    except BaseException:
        if sink.writer is not None:
            sink.writer.discard()
        raise
    if sink.writer is not None:
        sink.writer.close()
    return outcome, sink
