"""SLO-Pack's plan (docs/capacity.md §5): candidate placements, their GCA chains and dispatch set, and the
choice of the candidate predicted to carry the highest rate within the SLO.

Candidates: the capacity-bound LP rounded three ways (placement.slopack), the disjoint-chain design
(placement.disjoint_chains: an MILP over disjoint chains, each server its own block count) and GBP-CR for
every cache reservation c with every server placed. Each candidate's chains come from GCA (docs/model.md §14.2); under
a response-time quantile SLO, chains whose service alone breaks the limit are dropped from dispatch (a
request there is a miss whatever happens, so it is better queued for a chain that can meet it). The
prediction: the largest λ at which the Theorem-4 lower bound on JFFC's mean response time (docs/model.md
§14.4) stays within the response time the SLO allows (docs/capacity.md §5.2), found by bisection.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.capacity_bound import Slo, capacity_upper_bound, length_classes
from swarmplan.perf.model import PerfModel
from swarmplan.perf.queueing import jffc_response_bounds_ms
from swarmplan.placement.disjoint_chains import best_disjoint, chain_pool, design_placement, hop_tables
from swarmplan.placement.gbpcr import gbp_cr_all_c, whole_request_times
from swarmplan.placement.slopack import PRICING_BUDGET, ROUNDINGS, default_slo, rounded_placement
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain, gca


@dataclass(frozen=True)
class DispatchRule:
    """What SLO-Pack's length-aware central queue needs (sim.central.SloAwareQueue, docs/capacity.md §5.4):
    the SLO's kind and its absolute limit (ms; for a quantile SLO the response limit). Per-token SLO only
    (§5.5): requests with more output tokens than ``long_output_limit`` never start on a reserved chain
    (reserved_chains); "auto" means the limit is still to be chosen (sim.long_outputs, at ``rate_per_s`` on
    the request mix ``samples``), None that there is none."""

    kind: str
    limit_ms: float
    long_output_limit: float | str | None = None
    rate_per_s: float | None = None
    samples: tuple = ()


def reserved_chains(chains: list[Chain]) -> list[bool]:
    """docs/capacity.md §5.5 — the chains a per-token SLO reserves for short outputs: the fastest tier, the
    chains before the largest relative jump T_(i+1)/T_(i) in their sorted service times (with one speed, or
    one chain, none: nothing is faster to keep)."""
    service = sorted(ch.service_ms for ch in chains)
    jumps = [b / a for a, b in zip(service, service[1:])]
    if not jumps or max(jumps) <= 1.0:
        return [False] * len(chains)
    cut = service[int(np.argmax(jumps))]
    return [ch.service_ms <= cut for ch in chains]


@dataclass(frozen=True)
class SloPackPlan:
    placement: Placement
    chains: list[Chain]
    predicted_per_s: float
    source: str  # which candidate won
    candidates: int
    bound_per_s: float
    dispatch_rule: DispatchRule | None = None  # None: plain JFFC over ``chains``

    def summary(self) -> dict:
        """What a run reports of the plan beside its metrics."""
        bound = self.bound_per_s if np.isfinite(self.bound_per_s) else None  # None: no finite bound proved
        return {"slo_pack_candidate": self.source, "slo_pack_bound_per_s": bound}


def admissible_chains(pm: PerfModel, chains: list[Chain], slo: Slo | None) -> list[Chain]:
    """The chains JFFC may start requests on (docs/capacity.md §5.3). Quantile SLO: those whose service alone
    meets the limit. Mean per-token SLO: those the fluid optimum of the chains uses — a fractional knapsack
    (max Σ λ_k s.t. Σ λ_k (τ_k − S) ≤ 0, λ_k ≤ c_k/T_k): every chain within the limit, then slower ones in
    increasing τ_k while the slack lasts; slower ones would only be used under load and break the mean."""
    if slo is None or slo.kind == "ttft":
        return chains
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    if slo.kind == "response":
        keep = [ch for ch in chains if ch.service_ms + d <= slo.limit_ms]
        return keep or chains
    metric = [(ch.service_ms + d) / pm.output_tokens for ch in chains]
    slack, keep = 0.0, set()
    for k in sorted(range(len(chains)), key=lambda k: (metric[k], k)):
        excess = (metric[k] - slo.limit_ms) * chains[k].capacity / chains[k].service_ms
        if excess > 0 and slack <= 0:
            break
        keep.add(k)
        slack -= excess
    return [ch for k, ch in enumerate(chains) if k in keep] or chains


def allowed_mean_response_ms(pm: PerfModel, slo: Slo, fastest_ms: float, fastest_first_ms: float) -> float:
    """The mean response time (ms) the SLO allows at the nominal lengths: per-token limit × l_out − delays;
    TTFT: the wait it leaves plus the fastest service; a response quantile: its limit (a necessary bound)."""
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    if slo.kind == "per_token":
        return slo.limit_ms * pm.output_tokens - d
    if slo.kind == "ttft":
        return slo.limit_ms - d - fastest_first_ms + fastest_ms
    return slo.limit_ms - d


def _allowed_ms(pm: PerfModel, slo: Slo, chains: list[Chain]) -> float:
    """The mean response the SLO allows on these chains (allowed_mean_response_ms at their fastest)."""
    fastest = min(chains, key=lambda ch: ch.service_ms)
    first = sum(pm.rtt_in_ms.max(axis=0)[j] + pm.tau_in_ms[j] * k for j, k in zip(fastest.servers, fastest.blocks))
    return allowed_mean_response_ms(pm, slo, fastest.service_ms, first)


def predicted_rate_per_s(chains: list[Chain], allowed_ms: float, steps: int = 30) -> float:
    """Largest λ with the Theorem-4 lower bound on JFFC's mean response time ≤ ``allowed_ms``."""
    if not chains or min(ch.service_ms for ch in chains) > allowed_ms:
        return 0.0
    service = [ch.service_ms for ch in chains]
    caps = [ch.capacity for ch in chains]
    nu = sum(c / s for c, s in zip(caps, service))
    lo, hi = 0.0, nu
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        try:
            ok = jffc_response_bounds_ms(service, caps, mid)[0] <= allowed_ms
        except SwarmplanError:
            ok = False
        lo, hi = (mid, hi) if ok else (lo, mid)
    return lo * 1000.0


_CACHE: dict[tuple, tuple] = {}


def candidate_designs(
    pm: PerfModel, slo: Slo, pricing_budget: int | None = PRICING_BUDGET
) -> tuple[list[tuple[str, Placement, list[Chain]]], float]:
    """The rate-independent candidates (LP roundings, GBP-CR for every c with every server placed) with their
    dispatch chains, and the bound; computed once per swarm, SLO and pricing budget (capacity_upper_bound)."""
    key = (id(pm), slo, pricing_budget)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is pm:
        return hit[1], hit[2]
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    bound = capacity_upper_bound(pm, slo, list(slo.classes) or length_classes(pm), d, pricing_budget=pricing_budget)
    tau_c, tau_p = whole_request_times(pm)
    raw: list[tuple[str, Placement]] = []
    if bound.chains:
        raw += [(f"lp-{rule}", rounded_placement(pm, bound, rule)) for rule in ROUNDINGS]
        design = best_disjoint(chain_pool(pm, slo, hop_tables(pm, slo, d, slo.samples), bound), slo, pm.n_servers)
        if design is not None:
            raw.append(("disjoint chains", design_placement(pm, design)))
    c_max = int(np.floor((pm.memory_gb.max() - pm.block_gb) / pm.kv_gb + 1e-9))
    keys: set = set()  # equal keys ⇔ equal placements: build one per distinct GBP-CR design, named by its least c
    for opt in gbp_cr_all_c(pm, range(1, c_max + 1), float("inf")):
        if opt.key not in keys:
            keys.add(opt.key)
            raw.append((f"gbp-cr c={opt.c}", opt.build()))
    seen, out = set(), []
    for name, pl in raw:
        k = (pl.start.tobytes(), pl.n_blocks.tobytes())
        if k in seen:
            continue
        seen.add(k)
        chains = admissible_chains(pm, gca(pl, pm.L, tau_c, tau_p), slo)
        if chains:
            out.append((name, pl, chains))
    if len(_CACHE) > 32:
        _CACHE.clear()
    _CACHE[key] = (weakref.ref(pm), out, bound.rate_per_s)
    return out, bound.rate_per_s


def plan_slo_pack(
    pm: PerfModel,
    slo: Slo | None = None,
    rate_per_s: float | None = None,
    extra: list[tuple[str, Placement, list[Chain]]] = (),
    pricing_budget: int | None = PRICING_BUDGET,
    dispatch: str = "slo-aware",
    long_output_limit: int | str | None = "auto",
) -> SloPackPlan:
    """SLO-Pack for ``slo`` (default: mean per-token ≤ 1.2 × the single-request bound) at ``rate_per_s``: the
    candidate with the least Theorem-4 lower bound on JFFC's mean response time at that rate (GBP-CR's
    criterion, over a larger set that includes GBP-CR's own plan, passed in ``extra``) among those whose
    bound is within the mean response the SLO allows; when none is (or no rate is given), the one predicted
    to carry the highest rate within the SLO. ``dispatch="slo-aware"`` gives the plan a length-aware queue
    rule (docs/capacity.md §5.4) when the SLO's request mix has more than one length pair; otherwise (and with
    ``"jffc"``) dispatch is JFFC over the admissible chains. ``long_output_limit`` (per-token SLO, §5.5): a
    fixed output length above which requests keep off the reserved chains, "auto" to have it chosen at the
    rate (by simulation, sim.long_outputs), or None for no limit."""
    slo = slo or default_slo(pm)
    cands, bound_rate = candidate_designs(pm, slo, pricing_budget)
    cands = cands + [(n, pl, admissible_chains(pm, ch, slo)) for n, pl, ch in extra if ch]
    if not cands:
        raise SwarmplanError("slo", f"no candidate placement has a chain for {slo.describe()}", "relax the SLO")
    best = None
    if rate_per_s is not None:
        for name, pl, chains in cands:
            try:
                value = jffc_response_bounds_ms(
                    [c.service_ms for c in chains], [c.capacity for c in chains], rate_per_s / 1000.0
                )[0]
            except SwarmplanError:
                continue
            if value > _allowed_ms(pm, slo, chains):  # breaks the SLO at this rate even by the lower bound
                continue
            if best is None or value < best[0]:
                best = (value, name, pl, chains)
    how = "least Theorem-4 bound at the rate, within the SLO"
    if best is None:
        how = "highest predicted rate within the SLO"
        for name, pl, chains in cands:
            rate = predicted_rate_per_s(chains, _allowed_ms(pm, slo, chains))
            if best is None or -rate < best[0]:
                best = (-rate, name, pl, chains)
    _, name, pl, chains = best
    rule = None
    if dispatch == "slo-aware" and slo.kind in ("per_token", "response") and len(set(slo.samples)) > 1:
        limit = long_output_limit if slo.kind == "per_token" else None  # "auto": sim.long_outputs.resolve_rule
        rule = DispatchRule(slo.kind, slo.limit_ms, limit, rate_per_s, tuple(slo.samples))
        if slo.kind == "response":  # every chain: the deadline rule decides per request which it may use
            tau_c, tau_p = whole_request_times(pm)
            chains = gca(pl, pm.L, tau_c, tau_p)
    pl = Placement(
        method="slo-pack",
        start=pl.start,
        n_blocks=pl.n_blocks,
        cache_slots=pl.cache_slots,
        memory_model="proposed",
        order=pl.order,
        info={"slo": slo.describe(), "candidate": name, "chosen_by": how, "bound_per_s": bound_rate},
    )
    return SloPackPlan(pl, chains, 0.0, name, len(cands), bound_rate, rule)
