"""WS-RR: waiting-penalised shortest-path routing (docs/model.md §8; Sun et al. 2025 §8.1).

Edge weight into j = w_j(k) + [RTT^in + (l_out−1)RTT] + [τ^in + (l_out−1)τ]·k: the whole-request service
time at j plus the expected wait there. While the cached no-wait optimum has free slots on every server it
stays optimal (waits only add to other chains), so the full pass runs only when some server is short.
"""

from __future__ import annotations


from swarmplan.perf.chains import shortest_chain
from swarmplan.routing.base import Route, Router
from swarmplan.routing.state import SlotState


class WsRrRouter(Router):
    name = "ws-rr"

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        if l_in == self.pm.input_tokens:
            return self.pm.hop_service(client, g.dst, g.k, None, l_out)
        return self.pm.hop_service(client, g.dst, g.k, l_in, l_out)

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        _, servers, processed = shortest_chain(self.graph, base + self.edge_waits(book, now, u))
        return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
