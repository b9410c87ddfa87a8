"""What every command shares: the console, the --set option, seeds, choices and output-file checks."""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.limits import clamp_workers

# markup and emoji off: server, GPU, scenario and file names are user text and print as written ("[/x]", ":x:").
console = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

SetOpt = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)")
OptionOpt = typer.Option(
    None, "--option", "-o", help="A placement's or policy's option: name.field=value (repeatable; `swarmplan methods` lists them)"
)
FailOpt = typer.Option(
    None,
    "--fail",
    help="A server outage: NAME@FAIL_S[-RETURN_S], e.g. s03@120-300 (repeatable; adds to the scenario's churn.events)",
)
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
        raise SwarmplanError(
            "--mtbf" if mtbf is None else "--downtime", "seeded failures need both --mtbf and --downtime", "give both (seconds)"
        )
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


def with_join_order(scenario, text: str | None):
    """``--join-order a,b,c`` as the scenario's placement.petals_join_order (checked against the servers when
    the swarm is made), so the resolved scenario in every output records it."""
    if text is None:
        return scenario
    order = [n.strip() for n in text.split(",") if n.strip()]
    placement = scenario.placement.model_copy(update={"petals_join_order": order})
    return scenario.model_copy(update={"placement": placement})


@dataclass(frozen=True)
class RunSetup:
    """What ``compare`` and ``simulate`` run: the scenario with the command line's changes, its folder (for
    relative paths) and the parsed --option overrides."""

    scenario: object  # scenario.models.Scenario
    base: Path | None
    overrides: dict
    join_order_given: bool

    def blame(self):
        """Errors about PETALS' join order name --join-order when the user gave it there."""
        return option_blame("--join-order", "placement.petals_join_order", self.join_order_given)


def run_setup(
    scenario: str,
    sets: list[str] | None,
    *,
    profile: str,
    cache_test: str,
    milp_time_limit: float,
    fail: list[str] | None,
    mtbf: float | None,
    downtime: float | None,
    join_order: str | None,
    options: list[str] | None,
) -> RunSetup:
    """Check the options every run command shares, load the scenario with --set, add --fail/--mtbf/--downtime
    to its churn and --join-order to its placement, and parse --option; all before any simulation starts."""
    from swarmplan.methods.options import parse_options
    from swarmplan.scenario.loader import load_scenario

    check_choice("--profile", profile, ("fair", "paper"))
    check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    check_number("--milp-time-limit", milp_time_limit, above=0, fix="give the solver a positive number of seconds")
    sc, base = load_scenario(scenario, sets or [])
    sc = with_join_order(with_churn(sc, fail, mtbf, downtime), join_order)
    return RunSetup(sc, base, parse_options(options), join_order is not None)


def print_assumptions(assumptions: list[dict]) -> None:
    """Values the scenario did not state and a method filled in, one line each (text output)."""
    for a in assumptions:
        console.print(f"assumed: {a['field']} = {a['value']:g} — {a['reason']} ({a['fix']})", highlight=False)


@contextmanager
def option_blame(option: str, field: str, given: bool):
    """Errors about scenario ``field`` name ``option`` instead when the user gave the value through that option."""
    try:
        yield
    except SwarmplanError as err:
        if given and err.field == field:
            raise SwarmplanError(option, err.problem, f"{err.fix} ({option} sets {field})" if err.fix else "") from None
        raise


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SwarmplanError(option, f"unknown value {value!r}", f"use one of {', '.join(choices)}")


def output_files(out: Optional[Path], names: tuple[str, ...], force: bool) -> list[Path]:
    """Files to write under ``out``, checked (and the folder made) before any work starts; refuses to overwrite
    what a user already has unless --force."""
    if out is None:
        return []
    if out.exists() and not out.is_dir():
        raise SwarmplanError("--out", f"{out} exists and is not a folder", "give a folder path")
    paths = [out / n for n in names]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise SwarmplanError("--out", f"would overwrite {', '.join(existing)}", "choose another folder or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SwarmplanError("--out", f"cannot create the folder {out}: {exc.strerror or exc}", "give a folder you can write to")
    if not os.access(out, os.W_OK | os.X_OK):
        raise SwarmplanError("--out", f"cannot write into {out}", "give a folder you can write to")
    for p in paths:
        if p.is_dir():
            raise SwarmplanError("--out", f"{p} is a folder", "remove it or choose another --out folder")
    return paths


def output_file(path: Path | None, option: str, force: bool) -> Path | None:
    """A single output file, checked before any work starts: its folder exists and is writable, it is not a
    folder, and it is not overwritten without --force."""
    if path is None:
        return None
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SwarmplanError(option, f"{path} is a folder", "give a file path")
    if not folder.is_dir():
        raise SwarmplanError(option, f"the folder {folder} does not exist", f"create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SwarmplanError(option, f"cannot write into {folder}", "give a path in a folder you can write to")
    if path.exists() and not force:
        raise SwarmplanError(option, f"would overwrite {path}", "choose another file or pass --force")
    return path


def check_number(
    option: str, value: float | None, *, above: float | None = None, at_least: float | None = None, fix: str = ""
) -> None:
    """A numeric option must be finite and in range: ``above`` (strict) or ``at_least``; None (unset) passes."""
    if value is None:
        return
    if not math.isfinite(value):
        raise SwarmplanError(option, f"{value} is not a finite number", fix or "give a finite number")
    if above is not None and not value > above:
        raise SwarmplanError(option, f"{value:g} must be greater than {above:g}", fix or f"give a value > {above:g}")
    if at_least is not None and not value >= at_least:
        raise SwarmplanError(option, f"{value:g} must be at least {at_least:g}", fix or f"give a value ≥ {at_least:g}")


def clamp_count(option: str, value: int, useful: int | None = None) -> int:
    """Worker processes or solver threads: at most the CPUs (and tasks); a note on stderr when lowered."""
    check_number(option, value, at_least=1)
    n, note = clamp_workers(value, useful)
    if note:
        err_console.print(f"note: {option}: {note}")
    return n


def run_record(command: str, sets: list[str] | None, scenario, base: Path | None, seed: int, **options) -> dict:
    """What a result file needs to be re-run from the file alone: swarmplan's version, the command line, every
    --set, the fully resolved scenario (its folder for relative paths), the seed and the options used.
    ``swarmplan <command> <this file>`` loads the scenario back from it (scenario.loader)."""
    import platform
    import shlex

    import swarmplan

    return {
        "swarmplan_version": swarmplan.__version__,
        "python": platform.python_version(),
        "command": command,
        "command_line": shlex.join(["swarmplan", *sys.argv[1:]]),
        "sets": list(sets or []),
        "seed": seed,
        "options": options,
        "scenario_dir": None if base is None else str(base),
        "scenario": scenario.model_dump(mode="json"),
    }


def sidecar(path: Path) -> Path:
    """Where a CSV's run record goes: ``requests.csv`` → ``requests.csv.run.json``."""
    return path.with_name(path.name + ".run.json")


def assumptions_of(scenario, base: Path | None, seed: int, run: int = 0) -> list[dict]:
    """The assumptions of the swarm a run draws (the first run's draw; listed servers are the same every run)."""
    from swarmplan.experiments.compare import run_seeds
    from swarmplan.scenario.realize import realize

    return realize(scenario, run_seeds(seed, run)[0], base).assumptions()
