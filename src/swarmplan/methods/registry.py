"""Named end-to-end methods: placement + routing + memory model (docs/model.md §10; Sun et al. 2025 §8.4).

Every method of one Monte Carlo run shares a MethodContext, so PETALS' random join order and the CG-BP
placement are drawn/computed once and reused by the variants that the paper derives from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Literal

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf import memory
from swarmplan.perf.model import PerfModel
from swarmplan.placement.petals import petals_placement
from swarmplan.placement.registry import place
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.petals import CacheTest, PetalsRouter
from swarmplan.routing.optrr import OptRrRouter
from swarmplan.routing.wsrr import WsRrRouter
from swarmplan.sim.central import JffcDispatcher
from swarmplan.sim.retry import RetryingClient

Family = Literal["proposed", "petals"]
Profile = Literal["fair", "paper"]


@dataclass
class MethodContext:
    pm: PerfModel
    rng: np.random.Generator
    rate_per_s: float
    R: int | None = None
    cache_test: CacheTest = "petals"
    use_fast_path: bool = True
    c: int | None = None
    c_criterion: str = "lower"
    milp_time_limit_s: float = 30.0
    slo: object | None = None  # perf.capacity_bound.Slo that capacity-aware methods (slo-pack) plan for

    @cached_property
    def join_order(self) -> list[int]:
        """PETALS' random join order, shared by Petals, Opt Num and Opt RR (BPRR §8.4)."""
        return self.rng.permutation(self.pm.n_servers).tolist()

    @cached_property
    def cgbp(self) -> Placement:
        return place("cg-bp", self.pm, self.R, self.rng, self.rate_per_s)

    @cached_property
    def chain_plan(self):
        """GBP-CR placement, GCA chains and the chosen c (docs/model.md §14)."""
        from swarmplan.methods.gbpcr import plan_chains

        return plan_chains(self.pm, self.rate_per_s, self.c, self.c_criterion)

    @cached_property
    def petals(self) -> Placement:
        return petals_placement(self.pm, order=self.join_order)

    def petals_router(self, pl: Placement, session_capacity) -> PetalsRouter:
        return PetalsRouter(self.pm, pl, self.cache_test, session_capacity, self.use_fast_path)


@dataclass(frozen=True)
class Method:
    name: str
    family: Family
    description: str
    build: Callable[[MethodContext], tuple[Placement, Router | JffcDispatcher | RetryingClient]]
    default: bool = True  # part of `compare` when no --methods are given


def _petals_sessions(ctx: MethodContext):
    return np.full(ctx.pm.n_servers, memory.session_capacity_petals(ctx.pm.petals_cache_gb, ctx.pm.kv_gb))


def _build_petals(ctx):
    pl = ctx.petals
    return pl, ctx.petals_router(pl, _petals_sessions(ctx))


def _build_petals_retry(ctx):
    pl = ctx.petals
    return pl, RetryingClient(ctx.petals_router(pl, _petals_sessions(ctx)))


def _build_opt_order(ctx):
    first = list(ctx.cgbp.order)
    order = first + [j for j in range(ctx.pm.n_servers) if j not in set(first)]
    pl = petals_placement(ctx.pm, order=order, method="opt-order")
    return pl, ctx.petals_router(pl, _petals_sessions(ctx))


def _build_opt_num(ctx):
    pm = ctx.pm
    pl = petals_placement(pm, order=ctx.join_order, n_blocks=ctx.cgbp.n_blocks, memory_model="proposed", method="opt-num")
    sessions = memory.session_capacity_proposed(pm.memory_gb, pl.n_blocks, pm.block_gb, pm.kv_gb)
    return pl, ctx.petals_router(pl, sessions)


def _build_opt_rr(ctx):
    pl = ctx.petals
    return pl, OptRrRouter(ctx.pm, pl, ctx.use_fast_path)


def _build_gbpcr(ctx):
    plan = ctx.chain_plan
    return plan.placement, JffcDispatcher(plan.chains)


def _build_cgbp_jffc(ctx):
    from swarmplan.methods.gbpcr import chains_for

    pl = ctx.cgbp
    return pl, JffcDispatcher(chains_for(ctx.pm, pl))


def _build_milp(ctx):
    from swarmplan.placement.milp import MilpOptions

    # The same target concurrency as CG-BP; warm-started from it.
    pl = place("milp", ctx.pm, ctx.cgbp.R, ctx.rng, ctx.rate_per_s, options=MilpOptions(time_limit_s=ctx.milp_time_limit_s))
    return pl, WsRrRouter(ctx.pm, pl, ctx.use_fast_path)


def _build_cgbprr(ctx):
    pl = ctx.cgbp
    return pl, WsRrRouter(ctx.pm, pl, ctx.use_fast_path)


def _build_helix(ctx):
    from swarmplan.placement.helix import helix_placement_cached
    from swarmplan.routing.helix import HelixRouter

    pl = helix_placement_cached(ctx.pm)
    return pl, HelixRouter(ctx.pm, pl, ctx.use_fast_path)


def _build_parallax(ctx):
    from swarmplan.placement.parallax import parallax_placement_cached
    from swarmplan.routing.parallax import ParallaxRouter

    pl = parallax_placement_cached(ctx.pm)
    return pl, ParallaxRouter(ctx.pm, pl, ctx.use_fast_path)


def _build_slo_pack(ctx):
    from swarmplan.routing.slopack import plan_slo_pack

    try:  # GBP-CR's own plan at this rate is one of the candidates
        gbp = ctx.chain_plan
        extra = [(f"gbp-cr at the rate (c={gbp.c})", gbp.placement, gbp.chains)]
    except SwarmplanError:
        extra = []
    plan = plan_slo_pack(ctx.pm, ctx.slo, ctx.rate_per_s, extra)
    return plan.placement, JffcDispatcher(plan.chains)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("petals", "petals", "PETALS: its block count, lowest-throughput windows (random join order), "
               "min-latency routing, fixed attention cache", _build_petals),
        Method("petals-retry", "petals", "PETALS as its real client behaves: a session that does not fit fails, "
               "the client backs off and re-routes (not in the paper's model)", _build_petals_retry),
        Method("opt-order", "petals", "PETALS with CG-BP's join order", _build_opt_order),
        Method("opt-num", "petals", "PETALS with CG-BP's block counts and the proposed memory model", _build_opt_num),
        Method("opt-rr", "petals", "PETALS' placement, each arrival on the chain minimising service + max wait",
               _build_opt_rr),
        Method("cg-bprr", "proposed", "CG-BP placement + WS-RR routing (Sun et al. 2025)", _build_cgbprr),
        Method("gbp-cr", "proposed", "GBP-CR placement + GCA chains + JFFC central queue (Sun, He, Hou 2026)",
               _build_gbpcr),
        Method("cgbp-jffc", "proposed", "CG-BP placement + GCA chains + JFFC central queue", _build_cgbp_jffc),
        Method("helix", "proposed", "Helix (ASPLOS '25): MILP placement maximising session throughput (HiGHS, "
               "warm-started) + max-flow and interleaved weighted round-robin per hop", _build_helix, default=False),
        Method("parallax", "proposed", "Parallax (GradientHQ): pipelines maximising k²/stages, water-filled layers, "
               "per-request min-latency DP over free nodes", _build_parallax, default=False),
        Method("slo-pack", "proposed", "SLO-Pack (ours): chains of the capacity-bound LP rounded to a placement "
               "(per-server cache), GCA chains, central queue to the fastest free chain that can meet the SLO",
               _build_slo_pack),
        Method("milp", "proposed", "exact MILP placement for CG-BP's R (layered, warm-started) + WS-RR routing",
               _build_milp, default=False),
    ]
}


def allocation_delay_ms(method: Method, profile: Profile, pm: PerfModel) -> float:
    """docs/model.md §10 — 'paper': 60 s for the proposed method, 250 s for PETALS-based ones; 'fair': one value."""
    t = pm.swarm.timing
    if profile == "fair":
        return t.fair_allocation_delay_ms
    return t.paper_allocation_delay_proposed_ms if method.family == "proposed" else t.paper_allocation_delay_petals_ms


def get_methods(names: list[str] | None) -> list[Method]:
    if not names:
        return [m for m in METHODS.values() if m.default]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise SwarmplanError("--methods", f"unknown method(s) {', '.join(unknown)}", f"use some of {', '.join(METHODS)}")
    return [METHODS[n] for n in names]
