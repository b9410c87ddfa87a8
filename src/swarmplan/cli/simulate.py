"""``swarmplan simulate``: one method, one run, every request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.cli.common import DowntimeOpt, FailOpt, MtbfOpt, OptionOpt, SetOpt, with_churn, check_choice, console
from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario


def simulate(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    method: str = typer.Option("cg-bprr", "--method", "-m"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1),
    seed: int = typer.Option(0, "--seed"),
    profile: str = typer.Option("fair", "--profile"),
    cache_test: str = typer.Option("petals", "--petals-cache-test"),
    as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="print only the first N requests"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="also write every request to this CSV file"),
    force: bool = typer.Option(False, "--force", help="overwrite --csv if it exists"),
    options: Optional[List[str]] = OptionOpt,
    fail: Optional[List[str]] = FailOpt,
    mtbf: Optional[float] = MtbfOpt,
    downtime: Optional[float] = DowntimeOpt,
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Run one method once and print per-request results."""
    from swarmplan.cli.render import requests_table
    from swarmplan.experiments.compare import compare as run_compare
    from swarmplan.methods.registry import get_methods

    check_choice("--profile", profile, ("fair", "paper"))
    check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    from swarmplan.methods.options import parse_options

    sc, base = load_scenario(scenario, sets or [])
    sc = with_churn(sc, fail, mtbf, downtime)
    overrides = parse_options(options)
    chosen = get_methods([method])
    result = run_compare(sc, chosen, 1, requests, seed, profile, cache_test, base, overrides=overrides)
    summary = result.per_run[chosen[0].name][0]
    if as_json:
        print(json.dumps({"scenario": sc.name, "method": method, "profile": profile, "summary": summary}))
        return
    if csv_path is not None:
        if csv_path.exists() and not force:
            raise SwarmplanError("--csv", f"would overwrite {csv_path}", "choose another file or pass --force")
        result.write_requests_csv(csv_path)
    console.print(requests_table(result.rows, limit))
    console.print(f"profile: {profile}; " + ", ".join(f"{k} = {v:.4g}" for k, v in summary.items()
                                                       if isinstance(v, (int, float))), highlight=False)
