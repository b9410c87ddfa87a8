"""Placement methods by name, with the R each needs resolved the same way everywhere."""

from __future__ import annotations

from typing import Callable

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.gsa import gsa
from swarmplan.placement.petals import petals_placement
from swarmplan.placement.target import paper_target
from swarmplan.placement.types import Placement


def resolve_R(pm: PerfModel, R: int | None, rate_per_s: float) -> tuple[int, dict]:
    """R as given, else the paper's rule (docs/model.md §6)."""
    if R is not None:
        return R, {"R_rule": "given"}
    tr = paper_target(pm, rate_per_s)
    return tr.R, {"R_rule": "paper §6", "single_request_ms": tr.single_request_ms, "R_max": tr.R_max}


def _petals(pm, R, rng, rate, balance_quality=0.75, rebalance=False):
    return petals_placement(pm, rng=rng, rebalance=rebalance, balance_quality=balance_quality)


def _cgbp(pm, R, rng, rate, **_):
    R, info = resolve_R(pm, R, rate)
    pl = cg_bp(pm, R)
    pl.info.update(info)
    return pl


def _gsa(pm, R, rng, rate, **_):
    R, info = resolve_R(pm, R, rate)
    pl = gsa(pm, R)
    pl.info.update(info)
    return pl


PLACEMENTS: dict[str, Callable[..., Placement]] = {"petals": _petals, "cg-bp": _cgbp, "gsa": _gsa}


def place(method: str, pm: PerfModel, R: int | None, rng: np.random.Generator, rate_per_s: float, **options) -> Placement:
    if method not in PLACEMENTS:
        raise SwarmplanError("--method", f"unknown placement method {method!r}", f"use one of {', '.join(PLACEMENTS)}")
    return PLACEMENTS[method](pm, R, rng, rate_per_s, **options)
