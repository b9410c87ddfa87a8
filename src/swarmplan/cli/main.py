"""``swarmplan`` command line: one module per command, registered here. Errors a user can cause exit 2
without a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from swarmplan.cli import capacity as capacity_cmd
from swarmplan.cli import catalog, compare, methods_cmd, plan, simulate
from swarmplan.cli import split as split_cmd
from swarmplan.errors import NoSolutionError, SwarmplanError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False,
                  help="Plan, simulate and validate geo-distributed pipeline-parallel LLM inference.")

app.command()(catalog.scenarios)
app.command()(catalog.schema)
app.command()(plan.plan)
app.command()(compare.compare)
app.command()(simulate.simulate)
app.command(name="methods")(methods_cmd.methods)
app.command(name="split")(split_cmd.split)
app.command(name="capacity")(capacity_cmd.capacity)


def main() -> None:
    try:
        app()
    except SwarmplanError as err:
        kind = "no solution" if isinstance(err, NoSolutionError) else "error"
        Console(stderr=True).print(f"[bold red]{kind}:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
