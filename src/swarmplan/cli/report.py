"""``swarmplan report DIR``: figures and a self-contained report.html for a finished sweep."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def report(
    folder: Path = typer.Argument(..., help="a folder written by `swarmplan sweep`"),
    as_json: bool = typer.Option(False, "--json", help="print the written paths as one JSON object"),
) -> None:
    """Write DIR/figures/*.png|svg and DIR/report.html (figures embedded; opens without a server)."""
    from swarmplan.experiments.deps import require_research

    require_research("report")
    from swarmplan.experiments.report import build_report

    rep = build_report(folder)
    if as_json:
        print(json.dumps({"report": str(rep.path), "figures": [str(p) for p in rep.figures], "tables": rep.tables}))
        return
    print(
        f"wrote {rep.path} ({len(rep.figures) // 2} figures as PNG and SVG under {folder / 'figures'}, {len(rep.tables)} tables)"
    )
