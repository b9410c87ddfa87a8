"""Parallax's phase-2 request routing (GradientHQ/parallax, scheduling/request_routing.py,
DynamicProgrammingRouting; related-work.md §5) on swarmplan's model (docs/capacity.md §4.2).

Each request takes the minimum-latency path over the nodes' contiguous ranges (a DP over the placement's
DAG): vertex cost = the node's per-token decode time for the layers it runs (Parallax's roofline layer
latency; docs/model.md §3.1), edge cost = the round trip to the node (hub-spoke, docs/model.md §3.2).
A node serving as many requests as its KV room allows is overloaded and skipped (Parallax's infinite
latency). When every path has an overloaded node, the request waits for the path that frees first
(least largest wait; Parallax keeps it queued until a route exists), the fastest among those.

``route_reference`` tries the distinct waits in ascending order, a shortest path each; the fast path finds
the first that has a chain directly — the least, over chains, of the chain's largest wait (one minimax pass
over the DAG, docs/model.md §13.5) — and runs one shortest path there, all in one compiled call on the
slot instants the router keeps between arrivals (§9.5).
"""

from __future__ import annotations

import math

import numpy as np

from swarmplan.perf.chains import SOURCE, _edges_kernel, shortest_chain
from swarmplan.perf.jit import njit
from swarmplan.routing.base import Route, Router
from swarmplan.routing.slots import SlotBook


@njit
def _parallax_kernel(order, first, last, src, edge_slot, base, short, ready, now, is_last, n):  # pragma: no cover
    """Returns (cost, sink server or −1, via edge per server, edge waits, whether every chain edge is free):
    the shortest chain on the edges waiting ≤ 0; if none, on the edges waiting ≤ w*, w* = min over chains
    (edges with finite base and wait) of the chain's largest edge wait. Edge waits: ready − now of the
    edge's slot where short, else 0."""
    ne = len(src)
    wait = np.empty(ne)
    for e in range(ne):
        s = edge_slot[e]
        wait[e] = ready[s] - now if short[s] else 0.0
    sink = np.zeros(n)
    w = np.empty(ne)
    for e in range(ne):
        w[e] = base[e] if wait[e] <= 0 else np.inf
    cost, end_at, via = _edges_kernel(order, first, last, src, w, is_last, sink, n)
    if end_at >= 0:
        return cost, end_at, via, wait, True
    least = np.full(n, np.inf)  # per server: the least largest wait of a chain prefix ending there
    for pos in range(len(order)):
        j = order[pos]
        b = np.inf
        for e in range(first[pos], last[pos]):
            if math.isfinite(base[e]) and math.isfinite(wait[e]):
                i = src[e]
                v = wait[e] if i == -1 else max(least[i], wait[e])
                if v < b:
                    b = v
        least[j] = b
    top = np.inf
    for pos in range(len(order)):
        j = order[pos]
        if is_last[j] and least[j] < top:
            top = least[j]
    if top == np.inf:
        return np.inf, -1, via, wait, False
    for e in range(ne):
        w[e] = base[e] if wait[e] <= top else np.inf
    cost, end_at, via = _edges_kernel(order, first, last, src, w, is_last, sink, n)
    return cost, end_at, via, wait, False


class ParallaxRouter(Router):
    name = "parallax-dp"

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        return self.pm.rtt_ms[client, g.dst] + self.pm.tau_ms[g.dst] * g.k  # per-token latency of the hop

    def route(self, book: SlotBook, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        if all(book.free(j) >= k for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers))
        kept = self.ready_times(book)
        if kept is None:
            return self.route_reference(book, now, base)
        short, ready = kept.refresh(book)
        g = self.graph
        _, end_at, via, wait, free = _parallax_kernel(
            g.order, g.first_edge, g.last_edge, g.src, self._edge_slot, base, short, ready, float(now), g.is_last, len(g.is_last)
        )
        if end_at < 0:
            raise RuntimeError("Parallax: no path can ever fit")
        servers, processed, waits = [], [], []
        j, src, k = int(end_at), g.src, g.k
        while j != SOURCE:
            e = int(via[j])
            servers.append(j)
            processed.append(int(k[e]))
            waits.append(0.0 if free else float(wait[e]))  # an edge's wait is its slot's (docs/model.md §9.5)
            j = int(src[e])
        return Route(servers[::-1], processed[::-1], waits[::-1])

    def route_reference(self, book: SlotBook, now, base) -> Route:
        """The slow path by definition: the free edges first, then each distinct wait in ascending order."""
        waits = self.edge_waits(book, now)
        free = np.where(waits <= 0, base, np.inf)
        _, servers, processed = shortest_chain(self.graph, free)
        if servers:
            return Route(servers, processed, [0.0] * len(servers))
        for w in np.unique(waits[np.isfinite(waits) & np.isfinite(base)]):
            _, servers, processed = shortest_chain(self.graph, np.where(waits <= w, base, np.inf))
            if servers:
                return Route(servers, processed, self.chain_waits(book, now, servers, processed))
        raise RuntimeError("Parallax: no path can ever fit")
