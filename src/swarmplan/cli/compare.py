"""``swarmplan compare``: methods over Monte Carlo runs on shared draws."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from swarmplan.cli.common import DowntimeOpt, FailOpt, MtbfOpt, OptionOpt, SetOpt, with_churn, check_choice, console, output_files
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario


def compare(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    methods: Optional[str] = typer.Option(None, "--methods", help="comma-separated names or placement+policy[+waiting] (default: all but milp; `swarmplan methods` lists them)"),
    runs: int = typer.Option(5, "--runs", min=1, help="Monte Carlo runs (servers and arrivals re-drawn)"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1, help="requests per run (default: the scenario's)"),
    seed: int = typer.Option(0, "--seed"),
    profile: str = typer.Option("fair", "--profile", help="fair (same delays for all) | paper (60 s vs 250 s)"),
    cache_test: str = typer.Option("petals", "--petals-cache-test", help="petals (PETALS' real test) | authors"),
    out: Optional[Path] = typer.Option(None, "--out", help="write summary.json and requests.csv here"),
    force: bool = typer.Option(False, "--force", help="overwrite existing files in --out"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes for the runs (results do not depend on it)"),
    milp_time_limit: float = typer.Option(30.0, "--milp-time-limit", help="milp method: solver time limit per run (s)"),
    options: Optional[List[str]] = OptionOpt,
    fail: Optional[List[str]] = FailOpt,
    mtbf: Optional[float] = MtbfOpt,
    downtime: Optional[float] = DowntimeOpt,
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Compare methods over Monte Carlo runs: mean ± std per metric and the change against PETALS."""
    from rich.progress import Progress

    from swarmplan.cli.render import compare_table
    from swarmplan.experiments.compare import compare as run_compare
    from swarmplan.methods.registry import get_methods
    from swarmplan.split import compare_methods as split_methods

    check_choice("--profile", profile, ("fair", "paper"))
    check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    from swarmplan.methods.options import parse_options

    sc, base = load_scenario(scenario, sets or [])
    sc = with_churn(sc, fail, mtbf, downtime)
    overrides = parse_options(options)
    chosen = split_methods.resolve(sc, [m.strip() for m in methods.split(",")] if methods else None, get_methods)
    targets = output_files(out, ("summary.json", "requests.csv"), force)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{sc.name}: {runs} runs × {len(chosen)} methods", total=runs * len(chosen))
        result = run_compare(sc, chosen, runs, requests, seed, profile, cache_test, base,
                             progress=lambda k: bar.advance(task, k), keep_rows=out is not None, jobs=jobs,
                             milp_time_limit_s=milp_time_limit, overrides=overrides)
    console.print(compare_table(result))
    if targets:
        targets[0].write_text(json.dumps(result.to_json(), indent=2))
        result.write_requests_csv(targets[1])
        console.print(f"wrote {targets[0]} and {targets[1]}")
