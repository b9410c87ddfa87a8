"""``swarmplan scenarios`` and ``swarmplan schema``: what scenarios exist and what a scenario file may hold."""

from __future__ import annotations

import json

from rich.table import Table

from swarmplan.cli.common import console
from swarmplan.scenario.loader import builtin_names, load_scenario, scenario_schema


def scenarios() -> None:
    """List the built-in scenarios."""
    table = Table("name", "description")
    for name in builtin_names():
        sc, _ = load_scenario(name)
        table.add_row(name, sc.description)
    console.print(table)


def schema() -> None:
    """Print the JSON Schema of scenario files."""
    print(json.dumps(scenario_schema(), indent=2))
