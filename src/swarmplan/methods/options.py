"""``--option name.field=value``: one generic way to set any placement's or policy's typed options
(docs/architecture.md "Methods as data"), validated like ``--set`` with errors that name the option."""

from __future__ import annotations

import dataclasses
import typing

from pydantic import TypeAdapter, ValidationError

from swarmplan.errors import SwarmplanError
from swarmplan.methods.policies import POLICIES
from swarmplan.placement.registry import PLACEMENTS


def option_types() -> dict[str, type]:
    """Every placement's and policy's options dataclass, by name."""
    kinds = {name: m.options for name, m in PLACEMENTS.items()}
    kinds.update({name: p.options for name, p in POLICIES.items()})
    return kinds


def parse_options(items: list[str] | None) -> dict[str, dict]:
    """``["milp.time_limit_s=30", …]`` → ``{"milp": {"time_limit_s": 30.0}}``, each value checked against
    its field's type (and constraints) by pydantic."""
    kinds = option_types()
    out: dict[str, dict] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        name, dot, fname = key.strip().rpartition(".")
        if not sep or not dot:
            raise SwarmplanError("--option", f"{item!r} is not name.field=value", "e.g. --option milp.time_limit_s=30")
        if name not in kinds:
            raise SwarmplanError(f"--option {key}", f"no placement or policy named {name!r}", f"use one of {', '.join(kinds)}")
        kind = kinds[name]
        fields = {f.name: f for f in dataclasses.fields(kind)}
        if fname not in fields:
            choices = ", ".join(fields) or "none: it has no options"
            raise SwarmplanError(f"--option {key}", f"{name} has no option {fname!r}", f"its options: {choices}")
        value: object = raw.strip()
        hint = typing.get_type_hints(kind, include_extras=True)[fname]
        if value in ("none", "None", "null"):
            value = None
        elif "tuple" in str(hint) and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        try:
            checked = TypeAdapter(hint).validate_python(value)
        except ValidationError as err:
            problem = err.errors()[0]["msg"]
            raise SwarmplanError(f"--option {key}", f"{raw!r}: {problem}", f"give a valid {fname}") from None
        out.setdefault(name, {})[fname] = checked
    return out
