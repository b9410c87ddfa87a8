"""The fluid rate of one placement within an SLO (docs/capacity.md §6): how much of the capacity bound a
method's placement keeps before any waiting, so that the loss from the bound to a measured capacity splits
into the placement's part (bound → its fluid rate) and the dynamics' part (fluid rate → measured: Poisson
waiting with finite slots, slow chains used under load).

The LP is the bound's (docs/capacity.md §2.1) on this placement alone: every chain the placement has, the
real slots S_j(m_j) of every server, each chain's mean service time and SLO value over the request lengths
(placement.disjoint_chains.hop_tables), routing blind to a request's lengths.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from swarmplan.perf.capacity_bound import Slo
from swarmplan.perf.model import PerfModel
from swarmplan.placement.disjoint_chains import hop_tables
from swarmplan.placement.types import Placement


def placement_chains(placement: Placement, L: int, limit: int = 20_000) -> list[tuple[tuple, tuple]] | None:
    """Every chain (servers, blocks processed) of a placement by depth-first search; None above ``limit``."""
    start, m = placement.start.tolist(), placement.n_blocks.tolist()
    end = [s + k - 1 if k else -1 for s, k in zip(start, m)]
    by_start: dict[int, list[int]] = {}
    for j in range(len(start)):
        if m[j]:
            for b in range(start[j], end[j] + 1):
                by_start.setdefault(b, []).append(j)
    out: list = []

    def walk(boundary: int, servers: list, blocks: list) -> bool:
        if boundary == L:
            out.append((tuple(servers), tuple(blocks)))
            return len(out) <= limit
        for j in by_start.get(boundary + 1, []):
            if j not in servers and not walk(end[j], servers + [j], blocks + [end[j] - boundary]):
                return False
        return True

    return out if walk(0, [], []) else None


def placement_fluid_per_s(pm: PerfModel, placement: Placement, slo: Slo, delay_ms: float) -> float | None:
    """max Σ λ_p over the placement's chains s.t. Σ_p λ_p T̄_p n_pj ≤ S_j(m_j) and the SLO row; None when the
    placement has too many chains to list."""
    chains = placement_chains(placement, pm.L)
    if chains is None:
        return None
    if not chains:
        return 0.0
    t = hop_tables(pm, slo, delay_ms, slo.samples)
    T = np.array([np.mean(sum(t.hop[:, j, k] for j, k in zip(s, b))) for s, b in chains])
    if slo.kind == "response":
        value = np.array(
            [np.mean(sum(t.hop[:, j, k] for j, k in zip(s, b)) + t.const_ms <= slo.limit_ms + 1e-9) for s, b in chains]
        )
        slo_row = -(value - slo.quantile)
    else:
        value = np.array([np.mean(sum(t.slo_part[:, j, k] for j, k in zip(s, b)) + t.const_ms) for s, b in chains])
        slo_row = value - slo.limit_ms
    rows, caps = [], []
    for j in range(pm.n_servers):
        row = np.array([T[p] * b[s.index(j)] if j in s else 0.0 for p, (s, b) in enumerate(chains)])
        if row.any():
            rows.append(row)
            caps.append(float(placement.cache_slots[j]))
    res = linprog(-np.ones(len(chains)), A_ub=np.array(rows + [slo_row]), b_ub=caps + [0.0], bounds=(0, None), method="highs")
    return float(-res.fun * 1000.0) if res.status == 0 else 0.0
