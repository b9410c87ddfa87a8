"""Placement methods as data (docs/architecture.md "Methods as data"): each is a name, a family (which
timing profile it gets), a typed options dataclass and a pure function of the run's ``PlanContext``.

Adding a placement is one module with its function and one ``register_placement`` call (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import numpy as np
from pydantic import Field

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.context import PlanContext
from swarmplan.placement.gsa import gsa
from swarmplan.placement.milp import MilpOptions
from swarmplan.placement.petals import petals_placement
from swarmplan.placement.types import Placement

Family = Literal["proposed", "petals"]


@dataclass(frozen=True)
class NoOptions:
    """A method without options."""


@dataclass(frozen=True)
class PetalsOptions:
    balance_quality: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = (
        None  # PETALS' --balance_quality; None: the scenario's placement value
    )
    rebalance: bool = False  # run PETALS' rebalancing after all servers joined
    join_order: tuple[str, ...] | None = None  # server names in joining order; None: random (seeded)


@dataclass(frozen=True)
class GbpCrOptions:
    c: Annotated[int, Field(ge=1)] | None = None  # cache reservation; None: chosen by ``criterion``
    criterion: Literal["lower", "upper", "surrogate"] = "lower"
    target_load: Annotated[float, Field(gt=0, le=1)] = 0.7


@dataclass(frozen=True)
class PlacementMethod:
    name: str
    family: Family
    description: str
    options: type
    run: Callable[[PlanContext, Any], Placement]


PLACEMENTS: dict[str, PlacementMethod] = {}


def register_placement(method: PlacementMethod) -> PlacementMethod:
    PLACEMENTS[method.name] = method
    return method


def placement_method(name: str) -> PlacementMethod:
    if name not in PLACEMENTS:
        raise SwarmplanError("--method", f"unknown placement method {name!r}", f"use one of {', '.join(PLACEMENTS)}")
    return PLACEMENTS[name]


def with_r_rule(ctx: PlanContext, placement: Placement) -> Placement:
    """Record how R was chosen when the paper's rule chose it (docs/model.md §6)."""
    _, rule = ctx.target
    return placement if rule is None else dataclasses.replace(placement, r_rule=rule)


def join_order_of(ctx: PlanContext, names: tuple[str, ...] | None) -> list[int]:
    if names is None:
        return ctx.join_order
    known = ctx.pm.swarm.server_names
    unknown = [n for n in names if n not in known]
    if unknown or sorted(names) != sorted(known):
        problem = f"unknown server(s) {', '.join(unknown)}" if unknown else "must name every server exactly once"
        raise SwarmplanError("petals.join_order", problem, f"list all of {', '.join(known)}")
    return [known.index(n) for n in names]


def _petals(ctx: PlanContext, o: PetalsOptions) -> Placement:
    bq = 0.75 if o.balance_quality is None else o.balance_quality  # PETALS' default
    return petals_placement(
        ctx.pm, order=join_order_of(ctx, o.join_order), rng=ctx.rng, rebalance=o.rebalance, balance_quality=bq
    )


def _cgbp(ctx: PlanContext, _: NoOptions) -> Placement:
    return with_r_rule(ctx, cg_bp(ctx.pm, ctx.target[0]))


def _gsa(ctx: PlanContext, _: NoOptions) -> Placement:
    return with_r_rule(ctx, gsa(ctx.pm, ctx.target[0]))


def _petals_cgbp_order(ctx: PlanContext, _: NoOptions) -> Placement:
    """PETALS with CG-BP's join order (the paper's "Opt Order" baseline, BPRR §8.4)."""
    first = list(ctx.placement("cg-bp").order)
    taken = set(first)
    order = first + [j for j in range(ctx.pm.n_servers) if j not in taken]
    return petals_placement(ctx.pm, order=order, method="opt-order")


def _petals_cgbp_num(ctx: PlanContext, _: NoOptions) -> Placement:
    """PETALS with CG-BP's block counts and the proposed memory model ("Opt Num", BPRR §8.4)."""
    return petals_placement(
        ctx.pm, order=ctx.join_order, n_blocks=ctx.placement("cg-bp").n_blocks, memory_model="proposed", method="opt-num"
    )


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


def _milp(formulation: str):
    def run(ctx: PlanContext, options: MilpOptions) -> Placement:
        from swarmplan.placement.milp import infeasible_error, solve_milp

        R = ctx.target[0]
        result = solve_milp(ctx.pm, R, formulation, options, warm_start=cgbp_warm_start(ctx.pm, R))
        if result.placement is None:
            raise infeasible_error(result)
        return with_r_rule(ctx, result.placement)

    return run


def _gbp_cr(ctx: PlanContext, o: GbpCrOptions) -> Placement:
    """GBP-CR's placement with its GCA chains, c and Theorem-4 bounds as the typed ``details``."""
    from swarmplan.placement.gbpcr_plan import plan_chains

    plan = plan_chains(ctx.pm, ctx.rate_per_s, o.c, o.criterion, o.target_load)
    return dataclasses.replace(plan.placement, details=plan)


for _m in (
    PlacementMethod(
        "petals", "petals", "PETALS: its block count, lowest-throughput windows in join order", PetalsOptions, _petals
    ),
    PlacementMethod("cg-bp", "proposed", "CG-BP for R concurrent requests (Sun et al. 2025, Alg. 1)", NoOptions, _cgbp),
    PlacementMethod("gsa", "proposed", "GSA: equal stages, slowest GPUs first (BPRR appendix)", NoOptions, _gsa),
    PlacementMethod("milp", "proposed", "exact layered MILP on HiGHS, warm-started from CG-BP", MilpOptions, _milp("layered")),
    PlacementMethod("milp-reference", "proposed", "the authors' big-M MILP on HiGHS", MilpOptions, _milp("reference")),
    PlacementMethod(
        "gbp-cr", "proposed", "GBP-CR with GCA chains and the choice of c (Sun, He, Hou 2026)", GbpCrOptions, _gbp_cr
    ),
    PlacementMethod("petals-cgbp-order", "petals", "PETALS with CG-BP's join order (Opt Order)", NoOptions, _petals_cgbp_order),
    PlacementMethod(
        "petals-cgbp-num", "petals", "PETALS with CG-BP's block counts, proposed memory (Opt Num)", NoOptions, _petals_cgbp_num
    ),
):
    register_placement(_m)


def resolve_R(pm: PerfModel, R: int | None, rate_per_s: float) -> tuple[int, dict]:
    """R as given, else the paper's rule (docs/model.md §6)."""
    ctx = PlanContext(pm, np.random.default_rng(0), rate_per_s, R)
    R, rule = ctx.target
    if rule is None:
        return R, {"R_rule": "given"}
    return R, {"R_rule": "paper §6", "single_request_ms": rule.single_request_ms, "R_max": rule.R_max}


def place(method: str, pm: PerfModel, R: int | None, rng: np.random.Generator, rate_per_s: float, options=None) -> Placement:
    """One placement by name (a fresh context: nothing shared with other methods)."""
    return PlanContext(pm, rng, rate_per_s, R).placement(method, options)


# Placement modules that register themselves on import (docs/extending.md, recipe 1): add yours here.
PLUGINS: tuple[str, ...] = ("swarmplan.placement.helix", "swarmplan.placement.parallax", "swarmplan.placement.slopack")
for _module in PLUGINS:
    __import__(_module)
