"""Opt RR: each arrival takes the chain minimising Σ hop service + max wait (docs/model.md §13.4;
Sun et al. 2025 §8.4 "Optimized RR").

The authors solve a small MILP per arrival; the same optimum follows exactly from one shortest-path pass per
distinct wait value w (only edges with wait ≤ w allowed; answer = min_w SP_w + w). WS-RR sums waits, Opt RR
takes their maximum, which is what the request really waits.
"""

from __future__ import annotations

from swarmplan.perf.chains import opt_rr_chain
from swarmplan.routing.base import Route
from swarmplan.routing.state import SlotState
from swarmplan.routing.wsrr import WsRrRouter


class OptRrRouter(WsRrRouter):
    """WS-RR's static weights and no-wait shortcut; the slow path takes min over w of SP_w + w on the
    (server, k) slots that are edges of the graph (docs/model.md §8.2, §13.4)."""

    name = "opt-rr"

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        _, servers, processed = opt_rr_chain(self.blocks, base, self.slot_waits(book, now, u))
        return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
