"""SLO-Pack: swarmplan's own placement for capacity at a latency SLO (docs/capacity.md §5).

The capacity bound's LP (perf.capacity_bound) already says which chains a swarm should run, and how much of
each server every chain should use, to carry the most requests within the SLO: its columns are chains
{(server, blocks)} with rates, sized by Little's law against each server's memory. SLO-Pack rounds that
fractional answer to one placement:

1. every server the LP uses gets the block count of the chains that use most of its memory there (its
   cache reservation follows per server, not one c for the whole swarm as GBP-CR);
2. servers the LP leaves idle hold nothing (chains through them would break the SLO or add nothing);
3. servers are laid out chain by chain, in decreasing LP rate, filling blocks 1..L consecutively (GBP-CR's
   rule for the last server of a chain: shift back so that it ends at L).
These roundings are candidates next to the disjoint-chain design (placement.disjoint_chains) and GBP-CR's
designs; routing.slopack picks one per rate and builds the dispatch set (docs/capacity.md §5.1–5.3).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from swarmplan.perf.capacity_bound import (
    BoundResult,
    Slo,
    length_classes,
    single_request_metric_ms,
)
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for

DEFAULT_FACTOR = 1.2  # without an SLO: mean per-token time ≤ 1.2 × the single-request bound
PRICING_BUDGET = 6000  # servers priced in all by the bound's column generation (docs/capacity.md §2.2)


def default_slo(pm: PerfModel) -> Slo:
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    base = single_request_metric_ms(pm, Slo("per_token", 0.0), length_classes(pm), d)
    return Slo("per_token", DEFAULT_FACTOR * base)


ROUNDINGS = ("most", "max", "min")


def block_counts(pm: PerfModel, bound: BoundResult, rule: str = "most") -> np.ndarray:
    """Per server one block count among those its LP chains use: the one using most of its memory
    (rate × time × blocks), the largest, or the smallest."""
    use: dict[tuple[int, int], float] = {}
    for ch in bound.chains:
        for j, n in zip(ch["servers"], ch["blocks"]):
            use[j, n] = use.get((j, n), 0.0) + ch["rate_per_s"] * ch["service_ms"] * n
    m = np.zeros(pm.n_servers, dtype=np.int64)
    best = np.full(pm.n_servers, -np.inf)
    for (j, n), u in sorted(use.items()):
        score = {"most": u, "max": n, "min": -n}[rule]
        if score > best[j]:
            best[j], m[j] = score, n
    return m


def layout(pm: PerfModel, bound: BoundResult, m: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Starts for the servers with m > 0: chain by chain in decreasing LP rate, blocks filled 1..L."""
    L = pm.L
    order: list[int] = []
    for ch in sorted(bound.chains, key=lambda c: -c["rate_per_s"]):
        for j in sorted(ch["servers"], key=lambda j: -int(m[j])):
            if m[j] > 0 and j not in order:
                order.append(j)
    start = np.zeros(pm.n_servers, dtype=np.int64)
    a = 1
    for j in order:
        start[j] = min(a, L - int(m[j]) + 1)
        a = min(a + int(m[j]) - 1, L) + 1
        if a > L:
            a = 1
    return start, order


def rounded_placement(pm: PerfModel, bound: BoundResult, rule: str = "most") -> Placement:
    """The LP's chains rounded to one placement (steps 1–3 above)."""
    m = block_counts(pm, bound, rule)
    start, order = layout(pm, bound, m)
    return Placement(
        method="slo-pack",
        start=np.where(m > 0, start, 0),
        n_blocks=m,
        cache_slots=slots_for(pm, m, "proposed"),
        memory_model="proposed",
        order=tuple(order),
        info={"rounding": rule, "bound_per_s": bound.rate_per_s},
    )


@dataclass(frozen=True)
class SloPackOptions:
    """The SLO SLO-Pack plans for: kind, an absolute limit in seconds or a factor of the single-request
    bound (when ``limit_s`` is None), and the quantile of a response SLO."""

    kind: Literal["per_token", "ttft", "response"] = "per_token"
    limit_s: Annotated[float, Field(gt=0)] | None = None
    factor: Annotated[float, Field(ge=1)] = DEFAULT_FACTOR
    quantile: Annotated[float, Field(gt=0, lt=1)] = 0.95
    # (l_in, l_out) pairs of the request mix, e.g. [[2048, 28], [512, 300]]; `swarmplan capacity` sets a trace's
    samples: tuple[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]], ...] = ()
    # Column generation of the bound's LP stops after its pricing DPs ran over this many servers in all
    # (docs/capacity.md §2.2); large swarms only (small ones finish first); None: no limit.
    pricing_budget: Annotated[int, Field(ge=1)] | None = PRICING_BUDGET
    # Central-queue dispatch (docs/capacity.md §5.4): "jffc" = the fastest free admissible chain, FCFS;
    # "slo-aware" = each request placed by its own lengths (cμ order and least per-token penalty for a
    # per-token SLO, deadline best fit for a quantile SLO) when ``samples`` hold more than one length pair;
    # with fixed lengths and for TTFT SLOs it is JFFC, so only length-distribution runs differ.
    dispatch: Literal["jffc", "slo-aware"] = "slo-aware"
    # Mean per-token SLO with "slo-aware" dispatch (docs/capacity.md §5.5): requests with more output tokens
    # than this never start on the chains reserved for short outputs; "auto" = chosen by simulating the plan at
    # its rate, "off" = no limit.
    long_output_limit: Literal["auto", "off"] | Annotated[int, Field(ge=1)] = "auto"

    def slo(self, pm: PerfModel) -> Slo:
        if self.limit_s is not None:
            return Slo(self.kind, self.limit_s * 1000.0, self.quantile, samples=tuple(self.samples))
        d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
        base = single_request_metric_ms(pm, Slo(self.kind, 0.0, self.quantile), None, d)
        return Slo(self.kind, self.factor * base, self.quantile, samples=tuple(self.samples))


def _slo_pack(ctx, o: SloPackOptions) -> Placement:
    """docs/capacity.md §5: the candidate chosen for this rate, with its dispatch chains as ``details``."""
    from swarmplan.errors import SwarmplanError
    from swarmplan.routing.slopack import plan_slo_pack

    try:  # GBP-CR's own plan at this rate is one of the candidates
        gbp = ctx.placement("gbp-cr")
        extra = [(f"gbp-cr at the rate (c={gbp.details.c})", gbp, gbp.details.chains)]
    except SwarmplanError:
        extra = []
    limit = None if o.long_output_limit == "off" else o.long_output_limit
    plan = plan_slo_pack(ctx.pm, o.slo(ctx.pm), ctx.rate_per_s, extra, o.pricing_budget, o.dispatch, limit)
    return dataclasses.replace(plan.placement, details=plan)


from swarmplan.placement.registry import PlacementMethod, register_placement

register_placement(
    PlacementMethod(
        "slo-pack",
        "proposed",
        "SLO-Pack (ours): the capacity bound's LP rounded, a disjoint-chain MILP design or a "
        "GBP-CR design, chosen per rate by the Theorem-4 bound within the SLO (docs/capacity.md §5)",
        SloPackOptions,
        _slo_pack,
    )
)
