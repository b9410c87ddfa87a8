"""Sweep grids: axes over scenario fields and the cells of their Cartesian product (docs/research.md §1).

An axis sets one scenario field (``workload.rate_per_s``) or several linked ones at once
(``servers.gpu_fractions.a100-80gb+servers.gpu_fractions.mig-1g-10gb``, one value per key, e.g. ``0.1/0.9``).
A cell is one point of the product; it becomes ``--set``-style overrides on the base scenario, so any field
a scenario file has can be swept.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import _parse_scalar


@dataclass(frozen=True)
class Axis:
    """One swept dimension: ``keys`` (dotted scenario paths) and, per point, one value per key."""

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its index in row-major order and the value of every axis key."""

    index: int
    values: dict[str, Any]

    def overrides(self) -> list[str]:
        """``key=value`` overrides, values written as JSON (a YAML subset, so numbers stay numbers)."""
        return [f"{k}={json.dumps(v)}" for k, v in self.values.items()]

    def label(self) -> str:
        return ", ".join(f"{k}={_show(v)}" for k, v in self.values.items())


def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _range(text: str, key: str) -> list[Any]:
    """``start:stop:step``, stop included when the steps land on it (decimal arithmetic: 0.1:0.3:0.1 → 3 values)."""
    parts = text.split(":")
    try:
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except (InvalidOperation, ValueError):
        raise SwarmplanError(
            "--grid", f"{key}: range {text!r} is not start:stop:step with numbers", "write e.g. 0.1:2.0:0.1"
        ) from None
    if step <= 0 or stop < start:
        raise SwarmplanError("--grid", f"{key}: range {text!r} needs step > 0 and stop ≥ start", "write e.g. 0.1:2.0:0.1")
    n = int((stop - start) / step) + 1
    if n > 100_000:
        raise SwarmplanError("--grid", f"{key}: range {text!r} has {n} values", "use a larger step")
    as_int = all(d == d.to_integral_value() for d in (start, step))
    return [int(start + i * step) if as_int else float(start + i * step) for i in range(n)]


def parse_axis(text: str) -> Axis:
    """Parse ``KEY=VALUES``: ``a,b,c``, ``start:stop:step``, a YAML list ``[v1, v2]``, or linked
    ``K1+K2=a1/a2,b1/b2``. Values are read as YAML scalars, as ``--set`` reads them."""
    if "=" not in text:
        raise SwarmplanError("--grid", f"{text!r} is not KEY=VALUES", "write e.g. --grid workload.rate_per_s=0.1,0.5")
    key, raw = (s.strip() for s in text.split("=", 1))
    keys = tuple(k.strip() for k in key.split("+"))
    if not all(keys) or not raw:
        raise SwarmplanError("--grid", f"{text!r} has an empty key or no values", "write e.g. --grid servers.count=9,19")
    if raw.startswith("["):
        parsed = _parse_scalar(raw)
        if not isinstance(parsed, list) or not parsed:
            raise SwarmplanError("--grid", f"{key}: {raw!r} is not a non-empty YAML list", "write e.g. [1, 2, 3]")
        points = [p if len(keys) > 1 and isinstance(p, list) else [p] for p in parsed]
    elif len(keys) == 1 and raw.count(":") == 2 and "," not in raw:
        points = [[v] for v in _range(raw, key)]
    else:
        points = [
            [_parse_scalar(v.strip()) for v in item.split("/")] if len(keys) > 1 else [_parse_scalar(item.strip())]
            for item in raw.split(",")
        ]
    for p in points:
        if len(p) != len(keys):
            raise SwarmplanError(
                "--grid",
                f"{key}: point {p!r} has {len(p)} value(s) for {len(keys)} key(s)",
                "give one value per linked key, separated by '/'",
            )
    values = tuple(tuple(p) for p in points)
    if len(set(map(json.dumps, values))) != len(values):
        raise SwarmplanError("--grid", f"{key}: repeated values", "list each value once")
    return Axis(keys, values)


def cells(axes: list[Axis]) -> list[Cell]:
    """Row-major product of the axes (the last axis varies fastest)."""
    keys = [k for ax in axes for k in ax.keys]
    if len(set(keys)) != len(keys):
        raise SwarmplanError("--grid", "a key appears on two axes", "sweep each scenario field on one axis only")
    out = []
    for i, combo in enumerate(itertools.product(*(ax.values for ax in axes))):
        values = {k: v for point, ax in zip(combo, axes) for k, v in zip(ax.keys, point)}
        out.append(Cell(i, values))
    return out or [Cell(0, {})]
