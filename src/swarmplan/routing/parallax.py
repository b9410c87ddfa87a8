"""Parallax's phase-2 request routing (GradientHQ/parallax, scheduling/request_routing.py,
DynamicProgrammingRouting; related-work.md §5) on swarmplan's model (docs/capacity.md §4.2).

Each request takes the minimum-latency path over the nodes' contiguous ranges (a DP over the placement's
DAG): vertex cost = the node's per-token decode time for the layers it runs (Parallax's roofline layer
latency; docs/model.md §3.1), edge cost = the round trip to the node (hub-spoke, docs/model.md §3.2).
A node serving as many requests as its KV room allows is overloaded and skipped (Parallax's infinite
latency). When every path has an overloaded node, the request waits for the path that frees first
(least largest wait; Parallax keeps it queued until a route exists), the fastest among those.
"""

from __future__ import annotations

import numpy as np

from swarmplan.perf.chains import shortest_chain
from swarmplan.routing.base import Route, Router
from swarmplan.routing.slots import SlotBook


class ParallaxRouter(Router):
    name = "parallax-dp"

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        return self.pm.rtt_ms[client, g.dst] + self.pm.tau_ms[g.dst] * g.k  # per-token latency of the hop

    def route(self, book: SlotBook, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        if all(book.free(j) >= k for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers))
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
