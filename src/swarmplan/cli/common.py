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
