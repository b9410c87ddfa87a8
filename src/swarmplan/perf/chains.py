"""Chains of a placement: the routing DAG by block boundaries and its shortest paths (docs/model.md §3.3, §8).

Nodes are servers holding blocks, ordered by their last block e_j (every edge goes to a larger e, so this
order is topological and one linear pass finds shortest paths, no graph objects per call). An edge i → j
exists when j holds block e_i + 1 and ends later (a_j ≤ e_i + 1 ≤ e_j); j then processes k = e_j − e_i
blocks. The source connects to servers holding block 1 (k = m_j); servers holding block L reach the sink.

Two ways to find the cheapest chain, with one tie rule (docs/model.md §8.1): at each server the first
minimum over its incoming edges in the order (source edge, then predecessors by increasing server index).

* ``shortest_chain`` takes a weight per edge (any weights, e.g. PETALS' server-to-server delays). The
  graph has Σ_j (servers ending in j's window) edges, which grows with the square of the servers.
* ``shortest_chain_jk`` takes a weight per (server j, blocks k) — what every hop-service weight is — and
  never builds edges: j's best incoming edge from block boundary b needs only the cheapest server ending at
  b, so one pass costs Σ_j m_j, linear in the servers (docs/model.md §8.2).

``*_reference`` are the straightforward definitions; the tests check the fast paths against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.perf.jit import ENABLED as JIT_ENABLED
from swarmplan.perf.jit import njit

SOURCE = -1


def _walk_edges(graph, end_at: int, via) -> tuple[list[int], list[int]]:
    """The chain ending at server ``end_at`` of an edge-list shortest path: servers and blocks each processes,
    source first, following each server's arriving edge ``via[j]``."""
    servers, processed = [], []
    j = int(end_at)
    while j != SOURCE:
        e = int(via[j])
        servers.append(j)
        processed.append(int(graph.k[e]))
        j = int(graph.src[e])
    return servers[::-1], processed[::-1]


def _walk_back(bc, end_at: int, pred) -> tuple[list[int], list[int]]:
    """The chain ending at server ``end_at`` of a per-(server, blocks) shortest path: servers and the blocks
    each processes (its end minus its predecessor's), source first, following predecessors ``pred[j]``."""
    servers, processed = [], []
    j, end = int(end_at), bc.end
    while j != SOURCE:
        i = int(pred[j])
        servers.append(j)
        processed.append(int(end[j] - (end[i] if i >= 0 else 0)))
        j = i
    return servers[::-1], processed[::-1]


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


def _ends_and_order(start, n_blocks):
    start = np.asarray(start, dtype=np.int64)
    m = np.asarray(n_blocks, dtype=np.int64)
    end = start + m - 1
    held = np.flatnonzero(m > 0)
    order = held[np.lexsort((held, end[held]))]
    return start, m, end, held, order


def build_chain_graph(start, n_blocks, L: int) -> ChainGraph:
    """The edge list of ``build_chain_graph_reference``, built with array operations (no per-server loop)."""
    start, m, end, held, order = _ends_and_order(start, n_blocks)
    n = len(m)
    a, e = start[order], end[order]
    e_sorted = e  # ``order`` is sorted by end block
    lo = np.searchsorted(e_sorted, a - 1, side="left")  # predecessors end in [a_j − 1, e_j − 1]
    hi = np.searchsorted(e_sorted, e - 1, side="right")
    cnt = np.maximum(hi - lo, 0)
    has_src = (a == 1).astype(np.int64)
    total = cnt + has_src
    last = np.cumsum(total)
    first = last - total
    n_edges = int(last[-1]) if len(last) else 0
    # Predecessor edges, grouped by node position and sorted by predecessor index inside a group.
    pos = np.repeat(np.arange(len(order), dtype=np.int64), cnt)
    group0 = np.repeat(np.cumsum(cnt) - cnt, cnt)
    rank = np.arange(len(pos), dtype=np.int64) - group0
    pred = order[np.repeat(lo, cnt) + rank]
    keys = np.sort(pos * max(n, 1) + pred)
    pos, pred = keys // max(n, 1), keys % max(n, 1)
    slot = first[pos] + has_src[pos] + rank
    src = np.empty(n_edges, dtype=np.int64)
    dst = np.empty(n_edges, dtype=np.int64)
    k = np.empty(n_edges, dtype=np.int64)
    src[slot], dst[slot], k[slot] = pred, order[pos], e[pos] - end[pred]
    sp = np.flatnonzero(has_src)
    src[first[sp]], dst[first[sp]], k[first[sp]] = SOURCE, order[sp], m[order[sp]]
    is_last = np.zeros(n, dtype=bool)
    is_last[held[end[held] == L]] = True
    return ChainGraph(L, order, src, dst, k, first.astype(np.int64), last.astype(np.int64), is_last)


def build_chain_graph_reference(start, n_blocks, L: int) -> ChainGraph:
    """The definition: per server, the source edge (if it holds block 1), then its predecessors by index."""
    start, m, end, held, order = _ends_and_order(start, n_blocks)
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
    return ChainGraph(
        L,
        order,
        np.array(src, dtype=np.int64),
        np.array(dst, dtype=np.int64),
        np.array(k, dtype=np.int64),
        np.array(first, dtype=np.int64),
        np.array(last, dtype=np.int64),
        is_last,
    )


def shortest_chain_reference(graph: ChainGraph, edge_weight, sink_weight=None):
    """Cheapest source → sink chain. ``edge_weight`` per edge; ``sink_weight`` per server (default 0).

    Returns (cost, servers, processed blocks) or (inf, [], []) when no chain exists. Ties keep the first
    (source edge, then lowest predecessor index) at each node, and the first sink server in ``order``.
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
    return (best, *_walk_edges(graph, end_at, via))


@njit
def _edges_kernel(order, first, last, src, w, is_last, sink, n):  # pragma: no cover - compiled
    """``shortest_chain_reference``'s loop over arrays; returns (cost, sink server or −1, via edge per server)."""
    dist = np.full(n, np.inf)
    via = np.full(n, -2, dtype=np.int64)
    for pos in range(len(order)):
        j = order[pos]
        best = np.inf
        arg = -2
        for e in range(first[pos], last[pos]):
            i = src[e]
            d = (0.0 if i == -1 else dist[i]) + w[e]
            if d < best:
                best = d
                arg = e
        dist[j] = best
        via[j] = arg
    best = np.inf
    end_at = -1
    for pos in range(len(order)):
        j = order[pos]
        if is_last[j]:
            v = dist[j] + sink[j]
            if v < best:
                best = v
                end_at = j
    return best, end_at, via


def shortest_chain(graph: ChainGraph, edge_weight, sink_weight=None):
    """``shortest_chain_reference``'s answer; compiled when numba is enabled (docs/model.md §8.1)."""
    if not JIT_ENABLED:
        return shortest_chain_reference(graph, edge_weight, sink_weight)
    n = len(graph.is_last)
    w = np.ascontiguousarray(edge_weight, dtype=np.float64)
    sink = np.zeros(n) if sink_weight is None else np.ascontiguousarray(sink_weight, dtype=np.float64)
    best, end_at, via = _edges_kernel(graph.order, graph.first_edge, graph.last_edge, graph.src, w, graph.is_last, sink, n)
    if end_at < 0:
        return float("inf"), [], []
    return (float(best), *_walk_edges(graph, end_at, via))


# ------------------------------------------------------------------------ per-(server, blocks) weights


@dataclass(frozen=True)
class BlockChains:
    """The same DAG without its edges: servers grouped by last block, and a slot per (server j, k ≤ m_j).

    A weight array ``w`` of length ``n_slots`` holds the weight of entering j processing k blocks at
    ``w[offset[j] + k − 1]``; ``slot_server`` and ``slot_k`` give every slot's (j, k) for building it.
    """

    L: int
    order: np.ndarray  # held servers by (last block, index)
    start: np.ndarray
    end: np.ndarray
    n_blocks: np.ndarray
    group_start: np.ndarray  # (L + 2,): positions in ``order`` of servers ending at b are [g[b], g[b+1])
    offset: np.ndarray  # per server: first slot
    slot_server: np.ndarray
    slot_k: np.ndarray
    slot_edge: np.ndarray  # whether (j, k) is an edge: entered from the source or from a server ending at e_j − k

    @property
    def n_slots(self) -> int:
        return len(self.slot_server)

    def slots(self, servers, k) -> np.ndarray:
        """Slot index of each (server, k) pair."""
        return self.offset[np.asarray(servers, dtype=np.int64)] + np.asarray(k, dtype=np.int64) - 1

    def edge_slots(self, graph: ChainGraph) -> np.ndarray:
        """Slot of every edge of the full graph (its weight in per-slot terms)."""
        return self.offset[graph.dst] + graph.k - 1


def block_chains(start, n_blocks, L: int) -> BlockChains:
    start, m, end, held, order = _ends_and_order(start, n_blocks)
    mm = np.where(m > 0, m, 0)
    offset = np.cumsum(mm) - mm
    slot_server = np.repeat(np.arange(len(m), dtype=np.int64), mm)
    slot_k = np.arange(len(slot_server), dtype=np.int64) - offset[slot_server] + 1
    group_start = np.searchsorted(end[order], np.arange(L + 2), side="left").astype(np.int64)
    b = end[slot_server] - slot_k
    slot_edge = (b == 0) | (np.diff(group_start)[np.maximum(b, 0)] > 0)
    return BlockChains(L, order, start, end, m, group_start, offset.astype(np.int64), slot_server, slot_k, slot_edge)


@njit
def _jk_kernel(order, start, end, m, offset, gstart, w, sink, L, n):  # pragma: no cover - compiled
    """Block-boundary DP with the reference tie rule; returns (cost, sink server or −1, predecessor per server).

    ``sd``/``pmin`` hold, per position, each finished end-group's distances sorted ascending (ties by index)
    and the prefix minimum of their server indices: fl(d + w) is non-decreasing in d, so the servers of a
    group whose sum equals the optimum are a prefix of ``sd`` and the lowest index among them is ``pmin``.
    """
    dist = np.full(n, np.inf)
    pred = np.full(n, -2, dtype=np.int64)
    sd = np.empty(len(order))
    pmin = np.empty(len(order), dtype=np.int64)
    for b in range(1, L + 1):
        g0, g1 = gstart[b], gstart[b + 1]
        for p in range(g0, g1):
            j = order[p]
            a, e, base = start[j], end[j], offset[j]
            best = np.inf
            src_d = np.inf
            if a == 1:
                src_d = 0.0 + w[base + m[j] - 1]
                best = src_d
            lo = a - 1 if a > 1 else 1
            for bb in range(lo, e):
                q0 = gstart[bb]
                if q0 < gstart[bb + 1]:
                    d = sd[q0] + w[base + e - bb - 1]
                    if d < best:
                        best = d
            dist[j] = best
            if best == np.inf or best != best:
                pred[j] = -2
            elif src_d == best:
                pred[j] = -1
            else:
                arg = n
                for bb in range(lo, e):
                    q0, q1 = gstart[bb], gstart[bb + 1]
                    if q0 < q1:
                        wk = w[base + e - bb - 1]
                        if sd[q0] + wk == best:
                            h0, h1 = q0 + 1, q1  # first position whose sum exceeds best
                            while h0 < h1:
                                mid = (h0 + h1) // 2
                                if sd[mid] + wk <= best:
                                    h0 = mid + 1
                                else:
                                    h1 = mid
                            if pmin[h0 - 1] < arg:
                                arg = pmin[h0 - 1]
                pred[j] = arg
        if g1 > g0:
            grp = order[g0:g1]
            srt = np.argsort(dist[grp], kind="mergesort")  # stable: equal distances stay by index
            low = n
            for t in range(g1 - g0):
                j = grp[srt[t]]
                sd[g0 + t] = dist[j]
                if j < low:
                    low = j
                pmin[g0 + t] = low
    best = np.inf
    end_at = -1
    for p in range(gstart[L], gstart[L + 1]):
        j = order[p]
        v = dist[j] + sink[j]
        if v < best:
            best = v
            end_at = j
    return best, end_at, pred


def shortest_chain_jk(bc: BlockChains, slot_weight, sink_weight=None):
    """``shortest_chain_reference`` on the full graph with edge weights ``slot_weight[edge_slots]``, in
    Σ m_j steps (docs/model.md §8.2). Weights must not be NaN."""
    n = len(bc.start)
    w = np.ascontiguousarray(slot_weight, dtype=np.float64)
    sink = np.zeros(n) if sink_weight is None else np.ascontiguousarray(sink_weight, dtype=np.float64)
    best, end_at, pred = _jk_kernel(bc.order, bc.start, bc.end, bc.n_blocks, bc.offset, bc.group_start, w, sink, bc.L, n)
    if end_at < 0:
        return float("inf"), [], []
    return (float(best), *_walk_back(bc, end_at, pred))


@njit
def _gca_exact(j, start, end, m, offset, gstart, cost, res, gmin):  # pragma: no cover - compiled
    """dist_j as ``_jk_kernel`` computes it, with weights cost[j, k] where k ≤ res[j] (else ∞) and gmin[bb]
    the least distance of the servers ending at bb."""
    a, e, base, rj = start[j], end[j], offset[j], res[j]
    best = np.inf
    if a == 1 and m[j] <= rj:
        best = 0.0 + cost[base + m[j] - 1]
    lo = a - 1 if a > 1 else 1
    for bb in range(lo, e):
        if gstart[bb] < gstart[bb + 1] and e - bb <= rj:
            d = gmin[bb] + cost[base + e - bb - 1]
            if d < best:
                best = d
    return best


@njit
def _sift_down(heap, g0, g1, i, dist):  # pragma: no cover - compiled
    """Restore the min-heap on dist below position i of the heap stored in heap[g0:g1]."""
    size = g1 - g0
    while True:
        c = 2 * i + 1
        if c >= size:
            return
        if c + 1 < size and dist[heap[g0 + c + 1]] < dist[heap[g0 + c]]:
            c += 1
        if dist[heap[g0 + c]] < dist[heap[g0 + i]]:
            heap[g0 + i], heap[g0 + c] = heap[g0 + c], heap[g0 + i]
            i = c
        else:
            return


@njit
def _heapify(heap, g0, g1, dist):  # pragma: no cover - compiled
    for i in range((g1 - g0) // 2 - 1, -1, -1):
        _sift_down(heap, g0, g1, i, dist)


@njit
def _lowest_tie(
    bb, wk, best, start, end, m, offset, gstart, cost, res, dist, fresh, heap, gmin, stack, epoch, n
):  # pragma: no cover - compiled
    """The lowest index among the servers ending at bb with fl(dist + wk) == best (n if none). Cached
    distances are lower bounds and the heap's subtrees hold no smaller keys, so only members whose bound can
    still tie are visited, and those are made exact first."""
    g0, g1 = gstart[bb], gstart[bb + 1]
    size = g1 - g0
    arg = n
    modified = False
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        i = stack[sp]
        s = heap[g0 + i]
        if dist[s] + wk > best:  # this key (a lower bound) and every key below it is too large
            continue
        if fresh[s] != epoch:
            d = _gca_exact(s, start, end, m, offset, gstart, cost, res, gmin)
            fresh[s] = epoch
            if d != dist[s]:
                dist[s] = d
                modified = True
        if dist[s] + wk == best and s < arg:
            arg = s
        for c in (2 * i + 1, 2 * i + 2):
            if c < size:
                stack[sp] = c
                sp += 1
    if modified:
        _heapify(heap, g0, g1, dist)
    return arg


@njit
def _jk_incremental(
    order, start, end, m, offset, gstart, cost, res, dist, fresh, heap, gmin, stack, path, epoch, L, n
):  # pragma: no cover - compiled
    """``_jk_kernel``'s chain with weights cost[j, k] where k ≤ res[j] (else ∞), evaluated lazily between calls.

    Residual slots only fall, so weights only rise and every distance only rises: a distance computed in an
    earlier call is a lower bound of the current one. Each end-group keeps its servers in a min-heap on those
    bounds. A call (``epoch``; the first computes everything) settles boundaries 1..L in order: the group's
    top is recomputed from the settled boundaries below it until a freshly computed top stays on top — its
    distance is the group's least (every other member's bound is at least as large). dist_j reads a
    boundary only through that least value, so the chain's cost is exact; the sink and each predecessor then
    follow the reference tie rule over the members whose bound can still tie (``_lowest_tie``), made exact
    first. Writes the chain's servers, sink first, into ``path``; returns (cost, its length)."""
    for b in range(1, L + 1):
        g0, g1 = gstart[b], gstart[b + 1]
        if g0 == g1:
            gmin[b] = np.inf
            continue
        if epoch == 1:
            for p in range(g0, g1):
                j = order[p]
                dist[j] = _gca_exact(j, start, end, m, offset, gstart, cost, res, gmin)
                fresh[j] = epoch
                heap[p] = j
            _heapify(heap, g0, g1, dist)
        else:
            while True:
                top = heap[g0]
                if fresh[top] == epoch:
                    break
                d = _gca_exact(top, start, end, m, offset, gstart, cost, res, gmin)
                fresh[top] = epoch
                if d != dist[top]:
                    dist[top] = d
                    _sift_down(heap, g0, g1, 0, dist)
        gmin[b] = dist[heap[g0]]
    if gstart[L] == gstart[L + 1] or not gmin[L] + 0.0 < np.inf:
        return np.inf, 0
    best = gmin[L] + 0.0
    j = _lowest_tie(L, 0.0, best, start, end, m, offset, gstart, cost, res, dist, fresh, heap, gmin, stack, epoch, n)
    count = 0
    while j >= 0:
        path[count] = j
        count += 1
        dj = dist[j]  # exact: the sink and every predecessor were made exact by _lowest_tie
        a, e, base, rj = start[j], end[j], offset[j], res[j]
        if a == 1 and m[j] <= rj and 0.0 + cost[base + m[j] - 1] == dj:
            break  # entered from the source (the reference tries the source edge first)
        lo = a - 1 if a > 1 else 1
        arg = n
        for bb in range(lo, e):
            if gstart[bb] < gstart[bb + 1] and e - bb <= rj:
                wk = cost[base + e - bb - 1]
                if gmin[bb] + wk == dj:  # some member of bb reaches dj (none can go below it)
                    t = _lowest_tie(
                        bb, wk, dj, start, end, m, offset, gstart, cost, res, dist, fresh, heap, gmin, stack, epoch, n
                    )
                    if t < arg:
                        arg = t
        j = arg if arg < n else -1
    return best, count


class CapacitatedChains:
    """Repeated cheapest chains while servers' residual slots fall (GCA, docs/model.md §14.2): entering j
    with k blocks costs ``cost[slot(j, k)]`` while k ≤ residual[j]. Each ``next()`` recomputes only servers
    that reach the top of their boundary's heap of lower bounds, or can tie on the chain (``_jk_incremental``)."""

    def __init__(self, bc: BlockChains, slot_cost, residual):
        self.bc = bc
        n, npos = len(bc.start), len(bc.order)
        self.cost = np.ascontiguousarray(slot_cost, dtype=np.float64)
        self.res = np.array(residual, dtype=np.int64)
        self.dist = np.full(n, np.inf)
        self.fresh = np.zeros(n, dtype=np.int64)
        self.heap = np.array(bc.order, dtype=np.int64)
        self.gmin = np.full(bc.L + 2, np.inf)
        self.stack = np.empty(max(npos, 1), dtype=np.int64)
        self.path = np.empty(bc.L + 1, dtype=np.int64)
        self._epoch = 0

    def next(self):
        """(cost, servers, blocks) of the cheapest chain on the usable edges, or (inf, [], [])."""
        bc = self.bc
        self._epoch += 1
        best, count = _jk_incremental(
            bc.order,
            bc.start,
            bc.end,
            bc.n_blocks,
            bc.offset,
            bc.group_start,
            self.cost,
            self.res,
            self.dist,
            self.fresh,
            self.heap,
            self.gmin,
            self.stack,
            self.path,
            self._epoch,
            bc.L,
            len(bc.start),
        )
        if count == 0:
            return float("inf"), [], []
        servers = self.path[:count][::-1].tolist()
        ends = bc.end[servers].tolist()
        processed = [e - p for e, p in zip(ends, [0] + ends[:-1])]
        return float(best), servers, processed

    def reserve(self, servers, blocks, times: int) -> None:
        for j, k in zip(servers, blocks):
            self.res[j] -= k * times


@njit
def _opt_rr_kernel(order, start, end, m, offset, gstart, base, waits, cands, L, n):  # pragma: no cover - compiled
    """min over w in ``cands`` (ascending) of SP(edges with wait ≤ w) + w; the first strict minimum."""
    best = np.inf
    best_end = -1
    best_pred = np.full(n, -2, dtype=np.int64)
    sink = np.zeros(n)
    w = np.empty(len(base))
    for c in range(len(cands)):
        cw = cands[c]
        for s in range(len(base)):
            w[s] = base[s] if waits[s] <= cw else np.inf
        cost, end_at, pred = _jk_kernel(order, start, end, m, offset, gstart, w, sink, L, n)
        if end_at >= 0 and cost + cw < best:
            best = cost + cw
            best_end = end_at
            best_pred[:] = pred
    return best, best_end, best_pred


def opt_rr_chain(bc: BlockChains, slot_base, slot_waits):
    """Opt RR's chain (docs/model.md §13.4): for each distinct finite wait w of an edge with a finite base,
    the shortest chain using only edges waiting ≤ w, plus w; the smallest total, earliest w on ties.
    Returns (total, servers, blocks) or (inf, [], [])."""
    base = np.ascontiguousarray(slot_base, dtype=np.float64)
    waits = np.ascontiguousarray(slot_waits, dtype=np.float64)
    cands = np.unique(waits[bc.slot_edge & np.isfinite(base) & np.isfinite(waits)])
    n = len(bc.start)
    best, end_at, pred = _opt_rr_kernel(
        bc.order, bc.start, bc.end, bc.n_blocks, bc.offset, bc.group_start, base, waits, cands, bc.L, n
    )
    if end_at < 0:
        return float("inf"), [], []
    return (float(best), *_walk_back(bc, end_at, pred))


# ------------------------------------------------------------- pair weights through nodes (PETALS' router)


@njit
def _pair_kernel(
    order, start, end, m, offset, gstart, node, hop_to, hop_src, own, fits, pen, sink, L, n
):  # pragma: no cover - compiled
    """``shortest_chain_reference`` on the full graph without its edges (docs/model.md §8.3). Edge i → j with k
    blocks weighs ((hop_to[node_j, node_i] + own[slot(j, k)]) + pen[j]) (the source edge: hop_src[j] in place of
    the pair term), ∞ where not fits[slot]; j's predecessors are the servers ending at a_j − 1 .. e_j − 1.

    Each finished end-group is kept sorted by distance (``sd``, with its servers ``si`` and nodes ``sn``).
    With h_j = min_v hop_to[node_j, v], no member at distance x can beat ``best`` once
    fl(x + fl(fl(h_j + own) + pen_j)) > best (floating-point addition is monotone), and neither can any
    later member, so each group is read only up to that point. Members are met by distance, not by index,
    so the reference's tie rule (source edge, then the lowest predecessor index) is applied explicitly.
    Returns (cost, sink server or −1, predecessor per server: −1 source, −2 none)."""
    dist = np.full(n, np.inf)
    via = np.full(n, -2, dtype=np.int64)
    npos = len(order)
    sd = np.empty(npos)
    si = np.empty(npos, dtype=np.int64)
    sn = np.empty(npos, dtype=np.int64)
    nearest = np.empty(hop_to.shape[0])
    for v in range(hop_to.shape[0]):
        nearest[v] = hop_to[v].min() if hop_to.shape[1] > 0 else np.inf
    for b in range(1, L + 1):
        g0, g1 = gstart[b], gstart[b + 1]
        for p in range(g0, g1):
            j = order[p]
            a, e, base, nj, pj = start[j], end[j], offset[j], node[j], pen[j]
            row = hop_to[nj]
            best = np.inf
            arg = -2
            if a == 1:
                s = base + m[j] - 1
                w = ((hop_src[j] + own[s]) + pj) if fits[s] else np.inf
                d = 0.0 + w
                if d < best:
                    best = d
                    arg = -1
            lo = a - 1 if a > 1 else 1
            for bb in range(lo, e):
                q0, q1 = gstart[bb], gstart[bb + 1]
                s = base + e - bb - 1
                if q0 == q1 or not fits[s]:  # no server ends at bb, or weight ∞ (never below best; no ∞ ties)
                    continue
                own_s = own[s]
                low = (nearest[nj] + own_s) + pj  # the least weight of an edge from this group
                for q in range(q0, q1):
                    x = sd[q]
                    if x + low > best:
                        break
                    d = x + ((row[sn[q]] + own_s) + pj)
                    i = si[q]
                    if d < best:
                        best = d
                        arg = i
                    elif d == best and arg >= 0 and i < arg:  # arg ≥ 0 only once best is finite
                        arg = i
            dist[j] = best
            via[j] = arg
        if g1 > g0:
            grp = order[g0:g1]
            srt = np.argsort(dist[grp], kind="mergesort")
            for t in range(g1 - g0):
                j = grp[srt[t]]
                sd[g0 + t] = dist[j]
                si[g0 + t] = j
                sn[g0 + t] = node[j]
    best = np.inf
    end_at = -1
    for p in range(gstart[L], gstart[L + 1]):
        j = order[p]
        v = dist[j] + sink[j]
        if v < best:
            best = v
            end_at = j
    return best, end_at, via


def shortest_chain_pairs(bc: BlockChains, node, hop_ss, hop_src, own, fits, pen=None, sink_weight=None):
    """``shortest_chain_reference`` on the full graph whose edge i → j with k blocks weighs
    ((hop_ss[node[i], node[j]] + own[slot(j, k)]) + pen[j]) (source → j: hop_src[j] for the pair term), ∞ where
    ``fits`` is false — PETALS' weights, whose server-to-server part depends on the servers' nodes
    (docs/model.md §8.3) — in Σ_j (servers ending in j's window) steps and no memory per edge."""
    n = len(bc.start)
    zeros = np.zeros(n)
    best, end_at, via = _pair_kernel(
        bc.order,
        bc.start,
        bc.end,
        bc.n_blocks,
        bc.offset,
        bc.group_start,
        np.ascontiguousarray(node, dtype=np.int64),
        np.ascontiguousarray(np.asarray(hop_ss, dtype=np.float64).T),  # row v: the hop into node v from each node
        np.ascontiguousarray(hop_src, dtype=np.float64),
        np.ascontiguousarray(own, dtype=np.float64),
        np.ascontiguousarray(fits, dtype=np.bool_),
        zeros if pen is None else np.ascontiguousarray(pen, dtype=np.float64),
        zeros if sink_weight is None else np.ascontiguousarray(sink_weight, dtype=np.float64),
        bc.L,
        n,
    )
    if end_at < 0:
        return float("inf"), [], []
    return (float(best), *_walk_back(bc, end_at, via))
