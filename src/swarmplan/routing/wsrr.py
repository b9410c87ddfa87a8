"""WS-RR: waiting-penalised shortest-path routing (docs/model.md §8; Sun et al. 2025 §8.1).

Edge weight into j = w_j(k) + [RTT^in + (l_out−1)RTT] + [τ^in + (l_out−1)τ]·k: the whole-request service
time at j plus the expected wait there. While the cached no-wait optimum has free slots on every server it
stays optimal (waits only add to other chains), so the full pass runs only when some server is short.

Every weight depends on (server, k) only, so routes come from the block-boundary DP over (server, k) slots
(docs/model.md §8.2) with waits asked only of servers short of slots; ``static_weights`` / ``edge_waits``
give the same weights per edge, which the tests route on with the edge-list definition.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from swarmplan.perf.chains import shortest_chain_jk
from swarmplan.routing.base import Route, Router, require_static_chain
from swarmplan.routing.state import SlotState


class WsRrRouter(Router):
    name = "ws-rr"

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        if l_in == self.pm.input_tokens:
            return self.pm.hop_service(client, g.dst, g.k, None, l_out)
        return self.pm.hop_service(client, g.dst, g.k, l_in, l_out)

    def slot_weights(self, client, l_in, l_out):
        bc = self.blocks
        if l_in == self.pm.input_tokens:
            return self.pm.hop_service(client, bc.slot_server, bc.slot_k, None, l_out)
        return self.pm.hop_service(client, bc.slot_server, bc.slot_k, l_in, l_out)

    def static_route(self, client, l_in, l_out):
        """The no-wait optimum per (client, lengths) and the static slot weights (∞ where k > slots)."""
        key = (client, l_in, l_out)
        hit = self._static.get(key)
        if hit is None:
            u = self.units(l_in, l_out)
            w = np.where(self.blocks.slot_k * u <= self._cap_slot, self.slot_weights(client, l_in, l_out), np.inf)
            _, servers, processed = shortest_chain_jk(self.blocks, w)
            require_static_chain(servers, u, l_in, l_out)
            hit = self._static[key] = (servers, processed, w)
        return hit

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        waits = self.slot_waits(book, now, u)
        _, servers, processed = shortest_chain_jk(self.blocks, base + waits)
        if not self.use_fast_path:
            return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
        # A chain's (server, k) are edge slots, whose waits are those just computed (docs/model.md §9.5).
        offset = self._offset
        return Route(servers, processed, [float(waits[offset[j] + k - 1]) for j, k in zip(servers, processed)], u)

    @cached_property
    def _offset(self) -> list[int]:
        return self.blocks.offset.tolist()
