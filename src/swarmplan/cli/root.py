"""Options of ``swarmplan`` itself (before the command): ``--version``."""

from __future__ import annotations

import typer


def _print_version(value: bool) -> None:
    if value:
        import swarmplan

        print(f"swarmplan {swarmplan.__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print swarmplan's version and exit"
    ),
) -> None:
    """Plan, simulate and validate geo-distributed pipeline-parallel LLM inference."""
