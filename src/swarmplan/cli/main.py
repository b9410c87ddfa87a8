"""``swarmplan`` command line: parse, call, print. Errors a user can cause exit 2 without a traceback."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, builtin_names, load_scenario, scenario_schema

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False,
                  help="Plan, simulate and validate geo-distributed pipeline-parallel LLM inference.")
console = Console()

SetOpt = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)")


def seed_streams(seed: int, n: int = 3) -> list[np.random.Generator]:
    """Independent generators for the swarm draw, the workload and the method, from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    table = Table("name", "description")
    for name in builtin_names():
        sc, _ = load_scenario(name)
        table.add_row(name, sc.description)
    console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    print(json.dumps(scenario_schema(), indent=2))


@app.command()
def plan(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    method: str = typer.Option("cg-bp", "--method", "-m", help="petals | cg-bp | gsa"),
    R: Optional[int] = typer.Option(None, "--R", help="target concurrency (default: the paper's rule)"),
    seed: int = typer.Option(0, "--seed", help="seed for drawn servers and PETALS' join order"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    rebalance: bool = typer.Option(False, "--rebalance", help="petals: run PETALS' rebalancing after joining"),
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Place the model's blocks on the scenario's servers and show the placement."""
    from swarmplan.cli.render import plan_json, print_plan
    from swarmplan.perf.model import PerfModel
    from swarmplan.placement.registry import place
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario(scenario, sets or [])
    swarm_rng, _, method_rng = seed_streams(seed)
    pm = PerfModel.from_swarm(realize(sc, swarm_rng, base))
    options = {"rebalance": rebalance, "balance_quality": sc.placement.petals_balance_quality} if method == "petals" else {}
    pl = place(method, pm, R if R is not None else sc.placement.R, method_rng, sc.workload.rate_per_s, **options)
    if as_json:
        print(json.dumps(plan_json(sc.name, pm, pl)))
    else:
        print_plan(console, pm, pl)


def main() -> None:
    try:
        app()
    except SwarmplanError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
