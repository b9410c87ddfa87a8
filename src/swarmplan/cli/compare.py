"""``swarmplan compare``: methods over Monte Carlo runs on shared draws."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from swarmplan.cli.common import (
    DowntimeOpt,
    FailOpt,
    MtbfOpt,
    OptionOpt,
    SetOpt,
    assumptions_of,
    clamp_count,
    console,
    output_files,
    print_assumptions,
    run_record,
    run_setup,
)
from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO


def compare(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name, YAML path or a result file to re-run"),
    methods: Optional[str] = typer.Option(
        None,
        "--methods",
        help="comma-separated names or placement+policy[+waiting] (default: all but milp; `swarmplan methods` lists them)",
    ),
    runs: int = typer.Option(5, "--runs", min=1, help="Monte Carlo runs (servers and arrivals re-drawn)"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1, help="requests per run (default: the scenario's)"),
    seed: int = typer.Option(0, "--seed", min=0),
    profile: str = typer.Option("fair", "--profile", help="fair (same delays for all) | paper (60 s vs 250 s)"),
    cache_test: str = typer.Option("petals", "--petals-cache-test", help="petals (PETALS' real test) | authors"),
    join_order: Optional[str] = typer.Option(
        None,
        "--join-order",
        help="PETALS' join order, comma-separated server names "
        "(sets placement.petals_join_order; default: random, seeded per run)",
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="write summary.json and requests.csv here"),
    force: bool = typer.Option(False, "--force", help="overwrite existing files in --out"),
    jobs: int = typer.Option(
        1, "--jobs", min=1, help="worker processes for the runs, at most the CPUs (results do not depend on it)"
    ),
    milp_time_limit: float = typer.Option(30.0, "--milp-time-limit", help="milp method: solver time limit per run (s)"),
    plot: bool = typer.Option(False, "--plot", help="also write per-method bars and the response-time CDF (PNG, SVG) to --out"),
    options: Optional[List[str]] = OptionOpt,
    fail: Optional[List[str]] = FailOpt,
    mtbf: Optional[float] = MtbfOpt,
    downtime: Optional[float] = DowntimeOpt,
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Compare methods over Monte Carlo runs: mean ± std per metric and the change against PETALS."""
    from rich.markup import escape
    from rich.progress import Progress

    from swarmplan.cli.render import compare_table
    from swarmplan.experiments.compare import compare as run_compare
    from swarmplan.methods.registry import get_methods
    from swarmplan.scenario.limits import require_fits
    from swarmplan.split import compare_methods as split_methods

    setup = run_setup(
        scenario,
        sets,
        profile=profile,
        cache_test=cache_test,
        milp_time_limit=milp_time_limit,
        fail=fail,
        mtbf=mtbf,
        downtime=downtime,
        join_order=join_order,
        options=options,
    )
    sc, base = setup.scenario, setup.base
    chosen = split_methods.resolve(sc, [m.strip() for m in methods.split(",")] if methods else None, get_methods)
    if plot:  # requests.csv is streamed (docs/research.md §8); the CDF keeps one float per request and method
        require_fits(
            "--runs",
            runs * len(chosen) * (requests or sc.workload.n_requests),
            8,
            "response times kept for the CDF (runs × methods × requests)",
            "fewer --runs or --requests, or no --plot",
        )
    jobs = clamp_count("--jobs", jobs, runs)
    if plot and out is None:
        raise SwarmplanError("--plot", "needs --out (the figures go beside summary.json)", "add --out DIR")
    figure_files: tuple[str, ...] = ()
    if plot:
        from swarmplan.experiments.deps import require_research

        require_research("--plot")
        from swarmplan.experiments.figures import COMPARE_FIGURES, FORMATS

        figure_files = tuple(f"{n}.{ext}" for n in COMPARE_FIGURES for ext in FORMATS)
    targets = output_files(out, ("summary.json", "requests.csv", *figure_files), force)
    with setup.blame(), Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(escape(f"{sc.name}: {runs} runs × {len(chosen)} methods"), total=runs * len(chosen))
        result = run_compare(
            sc,
            chosen,
            runs,
            requests,
            seed,
            profile,
            cache_test,
            base,
            progress=lambda k: bar.advance(task, k),
            keep_rows=False,
            jobs=jobs,
            milp_time_limit_s=milp_time_limit,
            overrides=setup.overrides,
            requests_csv=targets[1] if targets else None,
            keep_responses=plot,
        )
    assumptions = assumptions_of(sc, base, seed)
    console.print(compare_table(result))
    print_assumptions(assumptions)
    if targets:
        record = run_record(
            "compare",
            sets,
            sc,
            base,
            seed,
            methods=result.methods,
            runs=runs,
            requests=result.requests,
            profile=profile,
            petals_cache_test=cache_test,
            milp_time_limit_s=milp_time_limit,
            options=list(options or []),
        )
        if result.requests_file is not None:
            record["files"] = {"requests.csv": "every request of every run: one row per (run, method, request)"}
        targets[0].write_text(json.dumps({**result.to_json(), "assumptions": assumptions, "run": record}, indent=2))
        wrote = [targets[0]] + ([result.requests_file] if result.requests_file is not None else [])
        console.print(f"wrote {' and '.join(map(str, wrote))}", highlight=False)
    if plot:
        from swarmplan.experiments.figures import compare_figures

        console.print(f"wrote {', '.join(str(p) for p in compare_figures(result, out))}", highlight=False)
