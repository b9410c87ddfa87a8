"""``swarmplan reproduce NAME``: a paper's table or figure regenerated, ours beside the published values."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer


def reproduce(
    name: str = typer.Argument(..., help="table3 | table6 | ablation | followup"),
    runs: Optional[int] = typer.Option(
        None, "--runs", min=1, help="Monte Carlo runs per cell (default: the paper's: 20, ablation 10)"
    ),
    requests: Optional[int] = typer.Option(
        None, "--requests", min=1, help="requests per run (default 100; ablation: 200·λ as the authors' script)"
    ),
    seed: int = typer.Option(0, "--seed"),
    out: Optional[Path] = typer.Option(
        None, "--out", help="folder for the sweeps, table.csv and figures (default: reproduce-NAME)"
    ),
    force: bool = typer.Option(False, "--force", help="start over when --out holds a sweep with other settings"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="local worker processes (results do not depend on it)"),
    dask: Optional[str] = typer.Option(None, "--dask", help="'local' or tcp://HOST:PORT"),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="write figures (PNG and SVG) under OUT/figures"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Regenerate the first paper's Table III / VI and ablation figure, or the follow-up's Fig. 6 in shape."""
    from swarmplan.experiments.deps import require_research

    require_research("reproduce")
    from rich.table import Table

    from swarmplan.cli.common import console
    from swarmplan.cli.progress import progress_for
    from swarmplan.errors import SwarmplanError
    from swarmplan.experiments.executors import make_executor
    from swarmplan.experiments.reproduce import RECIPES
    from swarmplan.experiments.reproduce import reproduce as run_reproduce

    if name not in RECIPES:
        raise SwarmplanError("NAME", f"unknown reproduction {name!r}", f"use one of {', '.join(RECIPES)}")
    out = out or Path(f"reproduce-{name}")
    with make_executor(jobs, dask) as executor, progress_for(f"reproduce {name}", 10.0) as progress:
        rep = run_reproduce(name, out, runs, requests, seed, executor, progress, force, ["swarmplan", *sys.argv[1:]], plot)
    rep.table.to_csv(out / "table.csv", index=False)
    if as_json:
        print(
            json.dumps(
                {
                    "name": rep.name,
                    "title": rep.title,
                    "settings": rep.settings,
                    "table": json.loads(rep.table.to_json(orient="records")),
                    "notes": rep.notes,
                    "figures": [str(p) for p in rep.figures],
                    "table_csv": str(out / "table.csv"),
                },
                default=str,
            )
        )
        return
    table = Table(*[str(c) for c in rep.table.columns], title=rep.title)
    for _, row in rep.table.iterrows():
        table.add_row(*[f"{v:g}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    console.print("settings: " + "; ".join(f"{k} = {v}" for k, v in rep.settings.items()), highlight=False)
    for note in rep.notes:
        console.print(f"• {note}", highlight=False)
    console.print(
        f"wrote {out / 'table.csv'}" + (f" and {len(rep.figures)} figure files under {out / 'figures'}" if rep.figures else ""),
        highlight=False,
    )
