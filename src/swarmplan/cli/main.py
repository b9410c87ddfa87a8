"""``swarmplan`` command line: one module per command, registered here. Errors a user can cause exit 2
without a traceback."""

from __future__ import annotations

import sys

import typer

from swarmplan.cli import calibrate as calibrate_cmd
from swarmplan.cli import capacity as capacity_cmd
from swarmplan.cli import catalog, compare, methods_cmd, plan, reproduce, root, simulate, sweep
from swarmplan.cli import report as report_cmd
from swarmplan.cli import split as split_cmd
from swarmplan.cli import validate as validate_cmd
from swarmplan.cli.errors import report

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    help="Plan, simulate and validate geo-distributed pipeline-parallel LLM inference.",
)

app.callback()(root.root)
app.command()(catalog.scenarios)
app.command()(catalog.schema)
app.command()(plan.plan)
app.command()(compare.compare)
app.command()(simulate.simulate)
app.command(name="methods")(methods_cmd.methods)
app.command(name="split")(split_cmd.split)
app.command()(sweep.sweep)
app.command(name="report")(report_cmd.report)
app.command()(reproduce.reproduce)
app.command(name="calibrate")(calibrate_cmd.calibrate)
app.command(name="validate")(validate_cmd.validate)
app.command(name="capacity")(capacity_cmd.capacity)


def main() -> None:
    sys.exit(report(app))


if __name__ == "__main__":
    main()
