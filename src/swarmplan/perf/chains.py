"""Chains of a placement: the routing DAG by block boundaries and its shortest paths (docs/model.md §3.3, §8).

Nodes are servers holding blocks, ordered by their last block e_j (every edge goes to a larger e, so this
order is topological and one linear pass finds shortest paths, no graph objects per call). An edge i → j
exists when j holds block e_i + 1 and ends later (a_j ≤ e_i + 1 ≤ e_j); j then processes k = e_j − e_i
blocks. The source connects to servers holding block 1 (k = m_j); servers holding block L reach the sink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOURCE = -1


@dataclass(frozen=True)
class ChainGraph:
    L: int
    order: np.ndarray  # servers holding blocks, in topological order
    src: np.ndarray  # per edge: predecessor server, or SOURCE
    dst: np.ndarray  # per edge: server entered
    k: np.ndarray  # per edge: blocks processed at dst
    first_edge: np.ndarray  # per position in ``order``: slice start of its incoming edges
    last_edge: np.ndarray
    is_last: np.ndarray  # per server: holds block L (reaches the sink)

    @property
    def n_edges(self) -> int:
        return len(self.dst)


def build_chain_graph(start, n_blocks, L: int) -> ChainGraph:
    start = np.asarray(start, dtype=np.int64)
    m = np.asarray(n_blocks, dtype=np.int64)
    end = start + m - 1
    held = np.flatnonzero(m > 0)
    order = held[np.lexsort((held, end[held]))]
    src, dst, k, first, last = [], [], [], [], []
    for j in order.tolist():
        first.append(len(dst))
        if start[j] == 1:
            src.append(SOURCE), dst.append(j), k.append(int(m[j]))
        nxt = end[held] + 1  # predecessors by server index: ties go to the lowest index
        preds = held[(nxt >= start[j]) & (nxt <= end[j]) & (held != j)]
        src.extend(preds.tolist())
        dst.extend([j] * len(preds))
        k.extend((end[j] - end[preds]).tolist())
        last.append(len(dst))
    is_last = np.zeros(len(m), dtype=bool)
    is_last[held[end[held] == L]] = True
    return ChainGraph(L, order, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64),
                      np.array(k, dtype=np.int64), np.array(first), np.array(last), is_last)


def shortest_chain(graph: ChainGraph, edge_weight, sink_weight=None):
    """Cheapest source → sink chain. ``edge_weight`` per edge; ``sink_weight`` per server (default 0).

    Returns (cost, servers, processed blocks) or (inf, [], []) when no chain exists. Ties keep the first
    (source edge, then lowest predecessor index) at each node.
    """
    w = edge_weight.tolist() if isinstance(edge_weight, np.ndarray) else list(edge_weight)
    src = graph.src.tolist()
    n = len(graph.is_last)
    dist = [float("inf")] * n
    via = [-2] * n
    for pos, j in enumerate(graph.order.tolist()):
        best, arg = float("inf"), -2
        for e in range(graph.first_edge[pos], graph.last_edge[pos]):
            i = src[e]
            d = (0.0 if i == SOURCE else dist[i]) + w[e]
            if d < best:
                best, arg = d, e
        dist[j], via[j] = best, arg
    sink = np.zeros(n) if sink_weight is None else np.asarray(sink_weight, dtype=float)
    best, end_at = float("inf"), -1
    for j in graph.order.tolist():
        if graph.is_last[j] and dist[j] + sink[j] < best:
            best, end_at = dist[j] + sink[j], j
    if end_at < 0:
        return float("inf"), [], []
    servers, processed = [], []
    j = end_at
    while j != SOURCE:
        e = via[j]
        servers.append(j)
        processed.append(int(graph.k[e]))
        j = int(graph.src[e])
    return best, servers[::-1], processed[::-1]
