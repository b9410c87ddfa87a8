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
The routing (methods registry) is GCA chains with a central queue, dispatching only to chains that can meet
the SLO on their own (for a quantile SLO) and otherwise to the fastest free chain (JFFC).
"""

from __future__ import annotations

import weakref

import numpy as np

from swarmplan.perf.capacity_bound import BoundResult, Slo, capacity_upper_bound, length_classes, single_request_metric_ms
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for

DEFAULT_FACTOR = 1.2  # without an SLO: mean per-token time ≤ 1.2 × the single-request bound


def default_slo(pm: PerfModel) -> Slo:
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    base = single_request_metric_ms(pm, Slo("per_token", 0.0), length_classes(pm), d)
    return Slo("per_token", DEFAULT_FACTOR * base)


def block_counts(pm: PerfModel, bound: BoundResult) -> np.ndarray:
    """Per server, the block count whose LP chains use most of its memory (rate × time × blocks)."""
    use: dict[tuple[int, int], float] = {}
    for ch in bound.chains:
        for j, n in zip(ch["servers"], ch["blocks"]):
            use[j, n] = use.get((j, n), 0.0) + ch["rate_per_s"] * ch["service_ms"] * n
    m = np.zeros(pm.n_servers, dtype=np.int64)
    best = np.zeros(pm.n_servers)
    for (j, n), u in sorted(use.items()):
        if u > best[j]:
            best[j], m[j] = u, n
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


_CACHE: dict[tuple, tuple] = {}


def slo_pack(pm: PerfModel, slo: Slo | None = None) -> Placement:
    """SLO-Pack's placement for ``slo`` (default: mean per-token ≤ 1.2 × the single-request bound). It does not
    depend on the arrival rate, so it is computed once per swarm and SLO."""
    slo = slo or default_slo(pm)
    key = (id(pm), slo)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is pm:
        return hit[1]
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    bound = capacity_upper_bound(pm, slo, length_classes(pm), d)
    if not bound.chains:
        from swarmplan.errors import SwarmplanError

        raise SwarmplanError("slo", f"no chain meets {slo.describe()} on this swarm", "relax the SLO")
    m = block_counts(pm, bound)
    start, order = layout(pm, bound, m)
    pl = Placement(method="slo-pack", start=np.where(m > 0, start, 0), n_blocks=m,
                   cache_slots=slots_for(pm, m, "proposed"), memory_model="proposed", order=tuple(order),
                   info={"slo": slo.describe(), "bound_per_s": bound.rate_per_s, "lp_chains": len(bound.chains)})
    if len(_CACHE) > 32:
        _CACHE.clear()
    _CACHE[key] = (weakref.ref(pm), pl)
    return pl
