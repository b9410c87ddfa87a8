"""What every command shares: the console, the --set option, seeds, choices and output-file checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console

from swarmplan.errors import SwarmplanError

console = Console(width=None if sys.stdout.isatty() else 160)

SetOpt = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)")
OptionOpt = typer.Option(None, "--option", "-o",
                         help="A placement's or policy's option: name.field=value (repeatable; `swarmplan methods` lists them)")
FailOpt = typer.Option(None, "--fail", help="A server outage: NAME@FAIL_S[-RETURN_S], e.g. s03@120-300 (repeatable; "
                                             "adds to the scenario's churn.events)")
MtbfOpt = typer.Option(None, "--mtbf", help="Seeded failures: mean time between failures per server (s)")
DowntimeOpt = typer.Option(None, "--downtime", help="Seeded failures: mean downtime (s); goes with --mtbf")


def with_churn(scenario, fail: list[str] | None, mtbf: float | None, downtime: float | None):
    """The scenario with the command line's churn settings added to its ``churn`` (docs/model.md §16)."""
    from pydantic import ValidationError

    from swarmplan.scenario.models import ChurnSpec

    if not fail and mtbf is None and downtime is None:
        return scenario
    spec = scenario.churn.model_dump()
    for item in fail or []:
        name, at, when = item.partition("@")
        fail_s, dash, return_s = when.partition("-")
        try:
            event = {"server": name.strip(), "fail_s": float(fail_s), "return_s": float(return_s) if dash else None}
        except ValueError:
            raise SwarmplanError("--fail", f"{item!r} is not NAME@FAIL_S[-RETURN_S]", "e.g. --fail s03@120-300") from None
        if not at or not name.strip():
            raise SwarmplanError("--fail", f"{item!r} is not NAME@FAIL_S[-RETURN_S]", "e.g. --fail s03@120-300")
        spec["events"].append(event)
    if (mtbf is None) != (downtime is None):
        raise SwarmplanError("--mtbf" if mtbf is None else "--downtime", "seeded failures need both --mtbf and --downtime",
                             "give both (seconds)")
    if mtbf is not None:
        spec["process"] = {"mtbf_s": mtbf, "mean_downtime_s": downtime}
    try:
        churn = ChurnSpec.model_validate(spec)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise SwarmplanError(f"churn.{where}" if where else "churn", e["msg"], "check --fail/--mtbf/--downtime") from None
    return scenario.model_copy(update={"churn": churn})


def seed_streams(seed: int, n: int = 3) -> list[np.random.Generator]:
    """Independent generators for the swarm draw, the workload and the method, from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def join_order_indices(text: Optional[str], names: tuple[str, ...]) -> Optional[list[int]]:
    if text is None:
        return None
    order = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in order if n not in names]
    if unknown or sorted(order) != sorted(names):
        problem = f"unknown server(s) {', '.join(unknown)}" if unknown else "must name every server exactly once"
        raise SwarmplanError("--join-order", problem, f"list all of {', '.join(names)}")
    return [names.index(n) for n in order]


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SwarmplanError(option, f"unknown value {value!r}", f"use one of {', '.join(choices)}")


def output_files(out: Optional[Path], names: tuple[str, ...], force: bool) -> list[Path]:
    """Files to write under ``out``; refuses to overwrite what a user already has unless --force."""
    if out is None:
        return []
    if out.exists() and not out.is_dir():
        raise SwarmplanError("--out", f"{out} exists and is not a folder", "give a folder path")
    paths = [out / n for n in names]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise SwarmplanError("--out", f"would overwrite {', '.join(existing)}", "choose another folder or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    return paths
