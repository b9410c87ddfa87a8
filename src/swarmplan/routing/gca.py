"""GCA: greedy cache allocation — fastest feasible chains with capacities (docs/model.md §14.2;
Sun, He, Hou 2026, Alg. 2). Works on any placement.

Repeat: take the fastest source → sink chain (edge cost τ^c_j + τ^p_j k, the whole-request hop time);
its capacity is min over its hops of ⌊residual slots_j / k⌋; reserve it; drop every edge into a server
whose residual slots no longer cover the edge's k (a zero-capacity chain drops its bottleneck edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.perf.chains import build_chain_graph, shortest_chain
from swarmplan.placement.types import Placement


@dataclass(frozen=True)
class Chain:
    servers: tuple[int, ...]
    blocks: tuple[int, ...]
    service_ms: float  # T_k: mean service time of one job at the nominal lengths
    capacity: int  # c_k: jobs the chain may hold at once

    @property
    def rate_per_ms(self) -> float:
        return 1.0 / self.service_ms


def gca(placement: Placement, L: int, tau_c: np.ndarray, tau_p: np.ndarray, residual_slots=None) -> list[Chain]:
    g = build_chain_graph(placement.start, placement.n_blocks, L)
    res = np.array(placement.cache_slots if residual_slots is None else residual_slots, dtype=np.int64)
    cost = tau_c[g.dst] + tau_p[g.dst] * g.k
    active = g.k <= res[g.dst]
    chains: list[Chain] = []
    while active.any():
        total, servers, blocks = shortest_chain(g, np.where(active, cost, np.inf))
        if not servers:
            break
        edges = _edges_of(g, servers, blocks)
        per_edge = res[g.dst[edges]] // g.k[edges]
        cap = int(per_edge.min())
        if cap == 0:
            active[edges[per_edge == 0]] = False
            continue
        res[list(servers)] -= np.array(blocks) * cap
        chains.append(Chain(tuple(servers), tuple(blocks), float(total), cap))
        active &= g.k <= res[g.dst]
    return chains


def _edges_of(g, servers, blocks) -> np.ndarray:
    out, prev = [], -1
    for j, k in zip(servers, blocks):
        hit = np.flatnonzero((g.dst == j) & (g.src == prev) & (g.k == k))
        out.append(int(hit[0]))
        prev = j
    return np.array(out)
