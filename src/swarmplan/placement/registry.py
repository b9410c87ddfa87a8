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


def _petals(pm, R, rng, rate, balance_quality=0.75, rebalance=False, order=None):
    return petals_placement(pm, order=order, rng=rng, rebalance=rebalance, balance_quality=balance_quality)


def _with_R(place_for_R):
    """A method that needs R: as given, else the paper's rule, recorded in the placement's info."""
    def run(pm, R, rng, rate, **_):
        R, info = resolve_R(pm, R, rate)
        pl = place_for_R(pm, R)
        pl.info.update(info)
        return pl

    return run


def cgbp_warm_start(pm: PerfModel, R: int):
    """CG-BP's placement and, per client, all its requests on the fastest per-token chain: feasible for the
    MILP because the conservative rule keeps slots for R requests on every block (docs/model.md §5.3)."""
    from swarmplan.perf.chains import block_chains, shortest_chain_jk
    from swarmplan.placement.milp import requests_per_client

    try:
        pl = cg_bp(pm, R)
    except SwarmplanError:
        return None
    bc = block_chains(pl.start, pl.n_blocks, pm.L)
    j, k = bc.slot_server, bc.slot_k
    routes = []
    for c, n in enumerate(requests_per_client(R, pm.rtt_ms.shape[0]).tolist()):
        _, chain, blocks = shortest_chain_jk(bc, pm.rtt_ms[c, j] + pm.tau_ms[j] * k)
        if n:
            routes.append((c, tuple(chain), tuple(blocks), n))
    return pl, routes


def _milp(formulation):
    def run(pm, R, rng, rate, options=None, **_):
        from swarmplan.placement.milp import MilpOptions, infeasible_error, solve_milp

        R, info = resolve_R(pm, R, rate)
        result = solve_milp(pm, R, formulation, options or MilpOptions(), warm_start=cgbp_warm_start(pm, R))
        if result.placement is None:
            raise infeasible_error(result)
        result.placement.info.update(info)
        return result.placement

    return run


PLACEMENTS: dict[str, Callable[..., Placement]] = {
    "petals": _petals, "cg-bp": _with_R(cg_bp), "gsa": _with_R(gsa), "milp": _milp("layered"), "milp-reference": _milp("reference"),
}


def place(method: str, pm: PerfModel, R: int | None, rng: np.random.Generator, rate_per_s: float, **options) -> Placement:
    if method not in PLACEMENTS:
        raise SwarmplanError("--method", f"unknown placement method {method!r}", f"use one of {', '.join(PLACEMENTS)}")
    return PLACEMENTS[method](pm, R, rng, rate_per_s, **options)
