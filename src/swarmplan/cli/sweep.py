"""``swarmplan sweep``: a grid of scenario variants × Monte Carlo runs × methods, streamed to Parquet."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.cli.common import OptionOpt, SetOpt, check_choice, console
from swarmplan.errors import SwarmplanError


def sweep(
    scenario: str = typer.Argument("paper-abvt", help="built-in name or YAML path"),
    grid: Optional[List[str]] = typer.Option(
        None, "--grid", help="KEY=VALUES axis (repeatable): a,b,c | start:stop:step | [yaml list] | K1+K2=a1/a2,b1/b2"
    ),
    methods: Optional[str] = typer.Option(None, "--methods", help="comma-separated (default: all but milp)"),
    runs: int = typer.Option(5, "--runs", min=1, help="Monte Carlo runs per cell (servers and arrivals re-drawn)"),
    requests: Optional[int] = typer.Option(
        None, "--requests", min=1, help="requests per run (default: each cell's workload.n_requests)"
    ),
    seed: int = typer.Option(0, "--seed"),
    profile: str = typer.Option("fair", "--profile", help="fair | paper"),
    cache_test: str = typer.Option("petals", "--petals-cache-test", help="petals | authors"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for results.parquet (default: sweep-<scenario>)"),
    force: bool = typer.Option(False, "--force", help="start over when --out holds a different sweep"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="local worker processes (results do not depend on it)"),
    dask: Optional[str] = typer.Option(None, "--dask", help="'local' (a LocalCluster) or a scheduler address tcp://HOST:PORT"),
    dask_workers: Optional[int] = typer.Option(None, "--dask-workers", min=1, help="--dask local: worker processes (default 2)"),
    per_request: bool = typer.Option(False, "--per-request", help="also stream every request to requests.parquet"),
    log_every: float = typer.Option(10.0, "--log-every", help="seconds between progress lines when not on a terminal"),
    milp_time_limit: float = typer.Option(30.0, "--milp-time-limit", help="milp method: solver time limit per run (s)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (progress goes to stderr)"),
    options: Optional[List[str]] = OptionOpt,
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Sweep scenario fields; every method on the same draws; results stream to DIR/results.parquet and resume."""
    from swarmplan.experiments.deps import require_research

    require_research("sweep")
    from swarmplan.cli.progress import progress_for
    from swarmplan.experiments.executors import make_executor
    from swarmplan.experiments.grid import parse_axis
    from swarmplan.experiments.sweep import SweepSpec, read_results, run_sweep
    from swarmplan.scenario.loader import load_scenario

    check_choice("--profile", profile, ("fair", "paper"))
    check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    if jobs > 1 and dask:
        raise SwarmplanError("--jobs", "--jobs and --dask both given", "choose local processes or a Dask cluster")
    axes = tuple(parse_axis(g) for g in grid or [])
    spec = SweepSpec(
        scenario,
        axes,
        tuple(m.strip() for m in methods.split(",")) if methods else None,
        runs,
        requests,
        seed,
        profile,
        cache_test,
        tuple(sets or []),
        per_request,
        milp_time_limit,
        tuple(options or []),
    )
    spec.method_names()  # unknown methods fail before any work
    if out is None:
        out = Path(f"sweep-{load_scenario(scenario, list(sets or []))[0].name}")
    with make_executor(jobs, dask, dask_workers) as executor:
        with progress_for(f"sweep {out.name} [{executor.describe()}]", log_every) as progress:
            outcome = run_sweep(spec, out, executor, progress, force, ["swarmplan", *sys.argv[1:]])
    if as_json:
        print(json.dumps(outcome.to_json()))
        return
    df = read_results(out, ["method", "per_token_s", "response_mean_s", "wait_s"])
    means = df.groupby("method", sort=False).mean()
    console.print(
        f"{outcome.cells} cells × {outcome.runs} runs × {len(outcome.methods)} methods: ran "
        f"{outcome.ran} tasks, {outcome.skipped} already done, {outcome.wall_s:.1f} s on {outcome.executor}",
        highlight=False,
    )
    if outcome.failed:
        console.print(
            f"[yellow]{outcome.failed} task(s) could not run[/] (their rows carry the error); first: {outcome.first_error}",
            highlight=False,
        )
    for name, row in means.iterrows():
        console.print(
            f"  {name:<14} per-token {row.per_token_s:.3f} s, response {row.response_mean_s:.2f} s, "
            f"wait {row.wait_s:.2f} s (mean over all cells and runs)",
            highlight=False,
        )
    console.print(
        f"wrote {', '.join(outcome.files)}; `swarmplan report {out}` makes the figures and report.html", highlight=False
    )
