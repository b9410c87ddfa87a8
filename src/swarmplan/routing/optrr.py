"""Opt RR: each arrival takes the chain minimising Σ hop service + max wait (docs/model.md §13.4;
Sun et al. 2025 §8.4 "Optimized RR").

The authors solve a small MILP per arrival; the same optimum follows exactly from one shortest-path pass per
distinct wait value w (only edges with wait ≤ w allowed; answer = min_w SP_w + w). WS-RR sums waits, Opt RR
takes their maximum, which is what the request really waits.
"""

from __future__ import annotations

import numpy as np

from swarmplan.perf.chains import shortest_chain
from swarmplan.routing.base import Route, Router
from swarmplan.routing.state import SlotState
from swarmplan.routing.wsrr import WsRrRouter


class OptRrRouter(Router):
    name = "opt-rr"

    static_weights = WsRrRouter.static_weights

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        waits = self.edge_waits(book, now, u)
        best = (np.inf, [], [])
        for w in np.unique(waits[np.isfinite(base) & np.isfinite(waits)]):
            cost, chain, blocks = shortest_chain(self.graph, np.where(waits <= w, base, np.inf))
            if chain and cost + w < best[0]:
                best = (cost + w, chain, blocks)
        _, servers, processed = best
        return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
