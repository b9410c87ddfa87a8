"""``swarmplan simulate``: one method, one run, every request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.cli.common import (
    DowntimeOpt,
    FailOpt,
    MtbfOpt,
    OptionOpt,
    SetOpt,
    assumptions_of,
    console,
    output_file,
    print_assumptions,
    run_record,
    run_setup,
    sidecar,
)
from swarmplan.scenario.loader import DEFAULT_SCENARIO


def simulate(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name, YAML path or a result file to re-run"),
    method: str = typer.Option("cg-bprr", "--method", "-m"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    profile: str = typer.Option("fair", "--profile"),
    cache_test: str = typer.Option("petals", "--petals-cache-test"),
    join_order: Optional[str] = typer.Option(
        None,
        "--join-order",
        help="PETALS' join order, comma-separated server names "
        "(sets placement.petals_join_order; default: random, seeded per run)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="print only the first N requests"),
    csv_path: Optional[Path] = typer.Option(
        None, "--csv", help="also write every request to this CSV file (and the run record to FILE.run.json)"
    ),
    milp_time_limit: float = typer.Option(30.0, "--milp-time-limit", help="milp method: solver time limit (s)"),
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

    csv_file = output_file(csv_path, "--csv", force)  # checked before the run, not after
    meta_file = output_file(None if csv_file is None else sidecar(csv_file), "--csv", force)
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
    chosen = get_methods([method])
    with setup.blame():
        result = run_compare(
            sc,
            chosen,
            1,
            requests,
            seed,
            profile,
            cache_test,
            base,
            keep_rows=not as_json,  # the table prints them; --json does not
            overrides=setup.overrides,
            milp_time_limit_s=milp_time_limit,
            requests_csv=csv_file,
        )
    summary = result.per_run[chosen[0].name][0]
    record = run_record(
        "simulate",
        sets,
        sc,
        base,
        seed,
        method=method,
        requests=result.requests,
        profile=profile,
        petals_cache_test=cache_test,
        milp_time_limit_s=milp_time_limit,
        options=list(options or []),
    )
    assumptions = assumptions_of(sc, base, seed)
    if csv_file is not None:  # the rows were streamed there during the run
        meta_file.write_text(json.dumps({"run": record, "assumptions": assumptions}, indent=2))
    if as_json:
        print(
            json.dumps(
                {
                    "scenario": sc.name,
                    "method": method,
                    "profile": profile,
                    "summary": summary,
                    "assumptions": assumptions,
                    "run": record,
                }
            )
        )
        return
    console.print(requests_table(result.rows, limit))
    console.print(
        f"profile: {profile}; " + ", ".join(f"{k} = {v:.4g}" for k, v in summary.items() if isinstance(v, (int, float))),
        highlight=False,
    )
    print_assumptions(assumptions)
    if csv_file is not None:
        console.print(f"wrote {csv_file} and {meta_file}", highlight=False)
