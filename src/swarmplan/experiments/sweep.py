"""Parameter sweeps: every method on the same draws in every cell and run, streamed to Parquet, resumable
(docs/research.md).

A task is one (cell, run): one swarm draw and one arrival stream seeded by (seed, run) alone — the same in
every cell, so cells differ only by what the grid changes (common random numbers) and a task's result does
not depend on the grid's shape, the order tasks finish in or the executor. ``experiments.compare.run_once``
runs all methods of one task.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from swarmplan import __version__
from swarmplan.errors import SwarmplanError
from swarmplan.experiments import store
from swarmplan.experiments.compare import run_once
from swarmplan.experiments.executors import Executor, SerialExecutor
from swarmplan.experiments.grid import Axis, Cell, cells
from swarmplan.methods.registry import get_methods
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.models import Scenario

OUR_FILES = (store.RESULTS, store.REQUESTS, store.MANIFEST, store.SESSIONS, "parts", "figures", "report.html")


@dataclass(frozen=True)
class SweepSpec:
    """Everything that decides a sweep's numbers (and nothing that does not, such as the executor)."""

    scenario: str
    axes: tuple[Axis, ...] = ()
    methods: tuple[str, ...] | None = None  # None: the registry's default methods
    runs: int = 5
    requests: int | None = None  # None: each cell's workload.n_requests
    seed: int = 0
    profile: str = "fair"
    cache_test: str = "petals"
    sets: tuple[str, ...] = ()
    keep_requests: bool = False
    milp_time_limit_s: float = 30.0
    options: tuple[str, ...] = ()  # method options, NAME.FIELD=VALUE as `--option` (docs/extending.md)

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["axes"] = [{"keys": list(a.keys), "values": [list(v) for v in a.values]} for a in self.axes]
        doc["methods"] = list(self.method_names())
        doc["sets"] = list(self.sets)
        doc["options"] = list(self.options)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> SweepSpec:
        d = dict(doc)
        d["axes"] = tuple(Axis(tuple(a["keys"]), tuple(tuple(v) for v in a["values"])) for a in d["axes"])
        d["methods"] = tuple(d["methods"])
        d["sets"] = tuple(d["sets"])
        d["options"] = tuple(d.get("options", ()))
        return cls(**d)

    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in get_methods(list(self.methods) if self.methods else None))


@dataclass(frozen=True)
class SweepTask:
    """What a worker needs for one (cell, run): picklable, self-contained (the scenario is validated)."""

    cell: int
    run: int
    scenario: Scenario
    base_dir: Path | None
    methods: tuple[str, ...]
    requests: int
    seed: int
    profile: str
    cache_test: str
    keep_requests: bool
    milp_time_limit_s: float
    overrides: dict


def run_task(task: SweepTask) -> tuple[dict[str, dict], list[dict], str | None]:
    """One task on whichever machine runs it; pure given the task. A cell the methods cannot serve (e.g. too
    few servers to hold the model) is a result, not a crash: its rows carry the error and no metrics."""
    try:
        summaries, rows = run_once(
            task.scenario,
            list(task.methods),
            task.run,
            task.requests,
            task.seed,
            task.profile,
            task.cache_test,
            task.base_dir,
            task.keep_requests,
            task.milp_time_limit_s,
            task.overrides,
        )
    except SwarmplanError as err:
        return {m: {} for m in task.methods}, [], str(err)
    return summaries, rows, None


@dataclass
class SweepOutcome:
    out: Path
    cells: int
    runs: int
    methods: tuple[str, ...]
    tasks: int
    ran: int
    skipped: int
    wall_s: float
    executor: str
    rows: int
    request_rows: int
    files: list[str] = field(default_factory=list)
    failed: int = 0  # tasks (this session) whose methods could not run; their rows hold the error
    first_error: str | None = None

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def cell_scenarios(spec: SweepSpec) -> tuple[list[Cell], list[Scenario], Path | None]:
    """Validate every cell's scenario up front, so a bad grid value fails before any work is done."""
    grid = cells(list(spec.axes))
    scenarios, base = [], None
    for cell in grid:
        try:
            sc, base = load_scenario(spec.scenario, list(spec.sets) + cell.overrides())
        except SwarmplanError as err:
            where = f" (cell {cell.label()})" if cell.values else ""
            raise SwarmplanError(
                "--grid" if cell.values else err.field, f"{err.problem}{where}", err.fix or "check the grid values"
            ) from None
        scenarios.append(sc)
    return grid, scenarios, base


def _prepare(out: Path, manifest: dict, force: bool) -> None:
    """Resume when ``out`` holds the same sweep; refuse a different one unless ``force`` (then start over)."""
    path = out / store.MANIFEST
    if out.exists() and not out.is_dir():
        raise SwarmplanError("--out", f"{out} exists and is not a folder", "give a folder path")
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("spec") == manifest["spec"]:
            return
        if not force:
            diff = sorted(k for k in manifest["spec"] if old.get("spec", {}).get(k) != manifest["spec"][k])
            raise SwarmplanError(
                "--out",
                f"{out} holds a different sweep (differs in {', '.join(diff)})",
                "use another folder, repeat the original arguments to resume, or pass --force to start over",
            )
        for name in OUR_FILES:
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()) and not force:
        raise SwarmplanError("--out", f"{out} is not empty and holds no sweep", "choose a new folder or pass --force")
    (out / "parts").mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(path, manifest)


def run_sweep(
    spec: SweepSpec,
    out: Path,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    command: list[str] | None = None,
) -> SweepOutcome:
    """Run (or resume) ``spec`` into folder ``out``; ``progress(done, total)`` after each task."""
    t0 = time.perf_counter()
    executor = executor or SerialExecutor()
    from swarmplan.methods.options import parse_options

    methods = spec.method_names()
    overrides = parse_options(list(spec.options))
    grid, scenarios, base = cell_scenarios(spec)
    axis_types = {k: store.axis_type([c.values[k] for c in grid]) for ax in spec.axes for k in ax.keys}
    schema = store.results_schema(axis_types)
    manifest = {
        "spec": spec.to_json(),
        "version": __version__,
        "cells": [c.values for c in grid],
        "scenario_name": scenarios[0].name,
        "scenario": load_scenario(spec.scenario, list(spec.sets))[0].model_dump(mode="json"),
        "command": command or sys.argv,
    }
    _prepare(out, manifest, force)
    parts = out / "parts"
    done = store.finished_parts(parts)
    keys = [(c.index, r) for c in grid for r in range(spec.runs)]
    todo = [k for k in keys if k not in done]
    skipped = len(keys) - len(todo)

    def tasks():
        for cell, run in todo:
            sc = scenarios[cell]
            yield SweepTask(
                cell,
                run,
                sc,
                base,
                methods,
                spec.requests or sc.workload.n_requests,
                spec.seed,
                spec.profile,
                spec.cache_test,
                spec.keep_requests,
                spec.milp_time_limit_s,
                overrides,
            )

    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or sys.argv,
        "executor": executor.describe(),
        "skipped": skipped,
        "version": __version__,
    }
    finished, failed, first_error = skipped, 0, None
    if progress:
        progress(finished, len(keys))
    for task, (summaries, req_rows, error) in executor.imap_unordered(run_task, tasks()):
        cell = grid[task.cell]
        axis_vals = {k: store.axis_value(cell.values[k], t) for k, t in axis_types.items()}
        prefix = {"cell": task.cell, **axis_vals, "run": task.run, "seed": spec.seed, "error": error}
        if error:
            failed += 1
            first_error = first_error or f"cell {cell.label() or task.cell}, run {task.run}: {error}"
        rows = store.summary_rows(prefix, summaries)
        reqs = [{"cell": task.cell, **axis_vals, **r} for r in req_rows] if spec.keep_requests else None
        store.write_part(parts, task.cell, task.run, rows, schema, reqs)
        finished += 1
        if progress:
            progress(finished, len(keys))
    n_rows = store.compact(parts, keys, out / store.RESULTS, schema)
    n_req = store.compact(parts, keys, out / store.REQUESTS, None, prefix="requests-") if spec.keep_requests else 0
    wall = time.perf_counter() - t0
    session.update(ran=len(todo), failed=failed, wall_s=round(wall, 3))
    with open(out / store.SESSIONS, "a") as fh:
        fh.write(json.dumps(session) + "\n")
    files = [str(out / store.RESULTS)] + ([str(out / store.REQUESTS)] if n_req else [])
    return SweepOutcome(
        out,
        len(grid),
        spec.runs,
        methods,
        len(keys),
        len(todo),
        skipped,
        wall,
        executor.describe(),
        n_rows,
        n_req,
        files,
        failed,
        first_error,
    )


def read_manifest(out: Path) -> dict:
    path = out / store.MANIFEST
    if not path.exists():
        raise SwarmplanError(
            "DIR", f"{out} holds no sweep ({store.MANIFEST} missing)", "give a folder written by `swarmplan sweep`"
        )
    return json.loads(path.read_text())


def read_results(out: Path, columns: list[str] | None = None):
    """The compacted results as a pandas DataFrame."""
    import pyarrow.parquet as pq

    path = out / store.RESULTS
    if not path.exists():
        raise SwarmplanError(
            "DIR", f"{path} is missing (the sweep has not finished)", "rerun the same `swarmplan sweep` command to resume it"
        )
    return pq.read_table(path, columns=columns).to_pandas()


def axis_columns(manifest: dict) -> list[list[str]]:
    """The swept keys, grouped by axis."""
    return [list(a["keys"]) for a in manifest["spec"]["axes"]]


__all__ = ["SweepSpec", "SweepTask", "SweepOutcome", "run_sweep", "run_task", "read_manifest", "read_results", "axis_columns"]
