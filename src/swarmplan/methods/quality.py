"""How good is a placement? Its per-token time for R concurrent requests and the gap to a lower bound."""

from __future__ import annotations

from dataclasses import dataclass

from swarmplan.perf.bounds import lower_bound_ms
from swarmplan.perf.model import PerfModel
from swarmplan.placement.milp import MilpOptions, block_caps, requests_per_client, solve_milp
from swarmplan.placement.types import Placement
from swarmplan.routing.rrilp import route_concurrent

LP_BOUND_MAX_VARIABLES = 300_000  # larger swarms skip the LP relaxation (seconds to minutes)


@dataclass(frozen=True)
class Quality:
    R: int
    per_token_ms: float | None  # mean decode time per token of R concurrent requests, optimally routed
    lower_bound_ms: float  # best known lower bound (max of the cheap ones and any proven MILP bound)
    bound_source: str

    @property
    def gap(self) -> float | None:
        if self.per_token_ms is None or self.per_token_ms <= 0:
            return None
        return max(0.0, (self.per_token_ms - self.lower_bound_ms) / self.per_token_ms)


def layered_size(pm: PerfModel) -> int:
    """Columns of the layered MILP: 3·N·L placement binaries plus one flow per arc and client."""
    caps = block_caps(pm)
    L = pm.L
    arcs = sum(int(min(c, L - b)) for c in caps.tolist() for b in range(L))
    return 3 * pm.n_servers * L + arcs * pm.rtt_ms.shape[0]


def placement_quality(pm: PerfModel, placement: Placement, R: int, lp: bool = True) -> Quality:
    """docs/model.md §13.3 — value by the routing ILP (all R requests in memory at once) against
    max(single-request bound, LP relaxation of the layered MILP, the placement's own proven MILP bound)."""
    n_c = requests_per_client(R, pm.rtt_ms.shape[0])
    routed = route_concurrent(pm, placement, n_c)
    bounds = {"single-request bound": lower_bound_ms(pm, n_c)}
    if lp and layered_size(pm) <= LP_BOUND_MAX_VARIABLES:
        relaxed = solve_milp(pm, R, "layered", MilpOptions(time_limit_s=30), relax=True)
        if relaxed.solution.bound is not None:
            bounds["LP relaxation"] = relaxed.solution.bound
    proven = placement.info.get("best_bound_ms_per_token")
    if proven is not None and placement.R == R:
        bounds["MILP bound"] = proven
    source = max(bounds, key=bounds.get)
    return Quality(R, routed.objective_ms, bounds[source], source)
