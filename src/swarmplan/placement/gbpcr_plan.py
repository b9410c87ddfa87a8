"""GBP-CR + GCA + JFFC end to end, and the choice of the cache reservation c (docs/model.md §14.5;
Sun, He, Hou 2026 §1.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from swarmplan.errors import NoSolutionError, SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.perf.queueing import jffc_response_bounds_ms
from swarmplan.placement.gbpcr import gbp_cr, gbp_cr_all_c, whole_request_times
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain, gca

Criterion = Literal["lower", "upper", "surrogate"]


@dataclass(frozen=True)
class ChainPlan:
    c: int
    placement: Placement
    chains: list[Chain]
    bounds_ms: tuple[float, float] | None  # Theorem-4 (lower, upper) mean response time
    criterion: str
    candidates: int  # values of c tried
    overloaded: bool = False  # no c keeps λ below the chains' service rate; c maximises that rate instead

    @property
    def service_rate_per_ms(self) -> float:
        """ν = Σ_k c_k μ_k, the jobs per ms the chains complete when full."""
        return total_rate_per_ms(self.chains)

    def summary(self) -> dict:
        """What a run reports of the plan beside its metrics."""
        return {"c": self.c, "overloaded": self.overloaded, "theorem4_bounds_s": [b / 1000 for b in self.bounds_ms or []]}


def total_rate_per_ms(chains: list[Chain]) -> float:
    return sum(ch.capacity * ch.rate_per_ms for ch in chains)


def chains_for(pm: PerfModel, placement: Placement) -> list[Chain]:
    tau_c, tau_p = whole_request_times(pm)
    return gca(placement, pm.L, tau_c, tau_p)


def max_reservation(pm: PerfModel) -> int:
    """c_max = ⌊(max_j M_j − s_m) / s_c⌋."""
    return int(np.floor((pm.memory_gb.max() - pm.block_gb) / pm.kv_gb + 1e-9))


def _bounds(chains: list[Chain], lam: float):
    if not chains:
        return None
    try:
        return jffc_response_bounds_ms([ch.service_ms for ch in chains], [ch.capacity for ch in chains], lam)
    except SwarmplanError:
        return None


def plan_chains(
    pm: PerfModel, rate_per_s: float, c: int | None = None, criterion: Criterion = "lower", target_load: float = 0.7
) -> ChainPlan:
    """GBP-CR with the given c, or the c in 1..c_max minimising the criterion (the follow-up's default:
    the Theorem-4 lower bound; c values that are infeasible or unstable are skipped). When every c is
    unstable (λ ≥ ν), the c with the largest total service rate ν is taken and the plan says it is overloaded.

    The same choice as ``plan_chains_reference``, with GBP-CR run once per distinct block-count vector
    (``gbp_cr_all_c``) and GCA once per distinct placement, so thousands of c cost little more than a few."""
    if c is not None:
        return plan_chains_reference(pm, rate_per_s, c, criterion, target_load)
    lam = rate_per_s / 1000.0
    candidates = range(1, max_reservation(pm) + 1)
    seen: dict[tuple, tuple[list[Chain], tuple[float, float] | None]] = {}
    best = fastest = None  # (value or ν, option, chains, bounds)
    for opt in gbp_cr_all_c(pm, candidates, rate_per_s, target_load):
        if opt.key not in seen:
            chains = chains_for(pm, opt.build())
            seen[opt.key] = (chains, _bounds(chains, lam))
        chains, bounds = seen[opt.key]
        if criterion == "surrogate":
            value = opt.c * opt.K if opt.rate_of_chains_per_s >= opt.target_rate_per_s else np.inf
        else:
            value = np.inf if bounds is None else bounds[0 if criterion == "lower" else 1]
        nu = total_rate_per_ms(chains)
        if chains and (fastest is None or nu > fastest[0]):
            fastest = (nu, opt, chains, bounds)
        if np.isfinite(value) and (best is None or value < best[0]):
            best = (value, opt, chains, bounds)
    tried = len(candidates)
    if best is None:
        if fastest is None:
            raise NoSolutionError("workload.rate_per_s", "no cache reservation c gives any chain", "add servers or memory")
        _, opt, chains, _ = fastest
        return ChainPlan(opt.c, opt.build(), chains, None, criterion, tried, overloaded=True)
    _, opt, chains, bounds = best
    return ChainPlan(opt.c, opt.build(), chains, bounds, criterion, tried)


def plan_chains_reference(
    pm: PerfModel, rate_per_s: float, c: int | None = None, criterion: Criterion = "lower", target_load: float = 0.7
) -> ChainPlan:
    """The definition of ``plan_chains``: GBP-CR and (per distinct placement) GCA for every c in turn."""
    lam = rate_per_s / 1000.0
    candidates = [c] if c is not None else range(1, max_reservation(pm) + 1)
    best: tuple[float, ChainPlan] | None = None
    seen: dict[tuple, tuple[list[Chain], tuple[float, float] | None]] = {}
    tried = 0
    fastest: tuple[float, ChainPlan] | None = None  # largest ν, the fallback under overload
    for cc in candidates:
        tried += 1
        try:
            pl = gbp_cr(pm, cc, rate_per_s, target_load)
        except SwarmplanError:
            if c is not None:
                raise
            continue
        key = (pl.start.tobytes(), pl.n_blocks.tobytes())
        if key not in seen:
            chains = chains_for(pm, pl)
            bounds = None
            if chains:
                try:
                    bounds = jffc_response_bounds_ms([ch.service_ms for ch in chains], [ch.capacity for ch in chains], lam)
                except SwarmplanError:
                    bounds = None
            seen[key] = (chains, bounds)
        chains, bounds = seen[key]
        if criterion == "surrogate":
            reached = pl.info["rate_of_chains_per_s"] >= pl.info["target_rate_per_s"]
            value = cc * pl.info["K"] if reached else np.inf
        else:
            value = np.inf if bounds is None else bounds[0 if criterion == "lower" else 1]
        plan = ChainPlan(cc, pl, chains, bounds, criterion, tried)
        nu = total_rate_per_ms(chains)
        if chains and (fastest is None or nu > fastest[0]):
            fastest = (nu, plan)
        if c is not None:
            if not chains:
                raise NoSolutionError("c", f"GCA finds no chain on the GBP-CR placement for c = {cc}", "try another c")
            return plan
        if np.isfinite(value) and (best is None or value < best[0]):
            best = (value, plan)
    if best is None:
        if fastest is None:
            raise NoSolutionError("workload.rate_per_s", "no cache reservation c gives any chain", "add servers or memory")
        chosen = fastest[1]
        return ChainPlan(chosen.c, chosen.placement, chosen.chains, None, criterion, tried, overloaded=True)
    chosen = best[1]
    return ChainPlan(chosen.c, chosen.placement, chosen.chains, chosen.bounds_ms, criterion, tried)
