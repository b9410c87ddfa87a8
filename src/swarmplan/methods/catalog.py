"""Everything a method can be made of, as plain data (what ``swarmplan methods`` prints)."""

from __future__ import annotations

import dataclasses

from swarmplan.methods.policies import POLICIES
from swarmplan.methods.registry import ALIASES, WAITING
from swarmplan.placement.registry import PLACEMENTS


def _defaults(kind: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(kind)}


def method_catalog() -> dict:
    return {
        "placements": {
            n: {"family": m.family, "description": m.description, "options": _defaults(m.options)} for n, m in PLACEMENTS.items()
        },
        "policies": {
            n: {"waiting": list(p.waiting), "description": p.description, "options": _defaults(p.options)}
            for n, p in POLICIES.items()
        },
        "waiting": dict(WAITING),
        "aliases": {
            n: {"spec": f"{m.placement}+{m.policy}+{m.waiting}", "default": m.default, "description": m.description}
            for n, m in ALIASES.items()
        },
    }
