"""``swarmplan methods``: every placement, policy, waiting model and alias, with their options."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from swarmplan.cli.common import console


def methods(as_json: bool = typer.Option(False, "--json", help="print one JSON object")) -> None:
    """List what a method is made of: placements, policies, waiting models, aliases and every option."""
    from swarmplan.methods.catalog import method_catalog

    cat = method_catalog()
    if as_json:
        print(json.dumps(cat))
        return
    for kind in ("placements", "policies"):
        table = Table("name", "description", "options (--option name.field=value)", title=kind, title_justify="left")
        for name, entry in cat[kind].items():
            opts = ", ".join(f"{k}={v!r}" for k, v in entry["options"].items()) or "—"
            table.add_row(name, entry["description"], opts)
        console.print(table)
    table = Table("name", "meaning", title="waiting models", title_justify="left")
    for name, text in cat["waiting"].items():
        table.add_row(name, text)
    console.print(table)
    table = Table("alias", "placement+policy[+waiting]", "default in compare", title="method names", title_justify="left")
    for name, entry in cat["aliases"].items():
        table.add_row(name, entry["spec"], "yes" if entry["default"] else "no")
    console.print(table)
    console.print(
        "Any placement+policy[+waiting] combination is a method, e.g. --methods cg-bp+petals-route,gbp-cr+ws-rr", highlight=False
    )
