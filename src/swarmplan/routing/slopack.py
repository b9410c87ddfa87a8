"""SLO-Pack's dispatch set (docs/capacity.md §5.2): the GCA chains of its placement, less those that break a
quantile SLO on their own. Under a response-time quantile a request on a chain whose service alone exceeds
the limit is a miss whatever happens, so it is better queued for a chain that can meet it; under a mean
(per-token or TTFT) SLO a slower chain still adds capacity and JFFC uses it only when the fast ones are full."""

from __future__ import annotations

from swarmplan.perf.model import PerfModel
from swarmplan.routing.gca import Chain


def admissible_chains(pm: PerfModel, chains: list[Chain], slo) -> list[Chain]:
    if slo is None or slo.kind != "response":
        return chains
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms
    keep = [ch for ch in chains if ch.service_ms + d <= slo.limit_ms]
    return keep or chains
