"""GCA: greedy cache allocation — fastest feasible chains with capacities (docs/model.md §14.2;
Sun, He, Hou 2026, Alg. 2). Works on any placement.

Repeat: take the fastest source → sink chain (edge cost τ^c_j + τ^p_j k, the whole-request hop time);
its capacity is min over its hops of ⌊residual slots_j / k⌋; reserve it; drop every edge into a server
whose residual slots no longer cover the edge's k (a zero-capacity chain drops its bottleneck edges).

Every edge weight depends only on (server, k), so ``gca`` runs on the block-boundary DP
(``perf.chains.CapacitatedChains``: no edge list, and after each chain only the servers whose inputs
changed are recomputed) and reads each chain's capacity off its
(server, k) pairs; ``gca_reference`` is the edge-list definition it is tested against (docs/model.md §14.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.perf.chains import CapacitatedChains, block_chains, build_chain_graph, shortest_chain_reference
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
    """``gca_reference``'s chains. Residual slots only fall, so the usable edges are exactly those with
    k ≤ residual slots of their server, and a chain found on them has capacity ≥ 1."""
    bc = block_chains(placement.start, placement.n_blocks, L)
    res = np.array(placement.cache_slots if residual_slots is None else residual_slots, dtype=np.int64)
    j, k = bc.slot_server, bc.slot_k
    search = CapacitatedChains(bc, tau_c[j] + tau_p[j] * k, res)
    chains: list[Chain] = []
    while True:
        total, servers, blocks = search.next()
        if not servers:
            break
        cap = min(int(search.res[s]) // b for s, b in zip(servers, blocks))
        search.reserve(servers, blocks, cap)
        chains.append(Chain(tuple(servers), tuple(blocks), float(total), cap))
    return chains


def gca_reference(placement: Placement, L: int, tau_c: np.ndarray, tau_p: np.ndarray, residual_slots=None) -> list[Chain]:
    g = build_chain_graph(placement.start, placement.n_blocks, L)
    res = np.array(placement.cache_slots if residual_slots is None else residual_slots, dtype=np.int64)
    cost = tau_c[g.dst] + tau_p[g.dst] * g.k
    active = g.k <= res[g.dst]
    chains: list[Chain] = []
    while active.any():
        total, servers, blocks = shortest_chain_reference(g, np.where(active, cost, np.inf))
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
