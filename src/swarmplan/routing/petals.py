"""PETALS' min-latency inference routing as the paper models it (docs/model.md §4.5; petals.md §7.2).

Edge weights: source → j: RTT(c,j)/2 + 18 ms + τ_j m_j; i → j: RTT(i,j)/2 + 18 ms + τ_j k; j → sink:
RTT(c,j)/2; plus a 10 s penalty into a server without cache room. Two cache tests:
* ``petals`` (default, PETALS' real client): penalty when free slots < the server's whole span m_j
  (2 · max_length · span ≤ cache_tokens_left, in slot units);
* ``authors``: the authors' simulator, penalty only when free sessions are exactly 0 (BPRR §14 item 2).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from swarmplan.perf.chains import SOURCE, shortest_chain
from swarmplan.routing.base import Route, Router
from swarmplan.routing.state import SlotState

CacheTest = Literal["petals", "authors"]


class PetalsRouter(Router):
    name = "petals"

    def __init__(self, pm, placement, cache_test: CacheTest = "petals", session_capacity=None, use_fast_path=True):
        super().__init__(pm, placement, use_fast_path)
        self.cache_test = cache_test
        t = pm.swarm.timing
        unknown = t.petals_unknown_rtt_ms
        # One-way delay estimate: rtt/2, capped at 5 s as PETALS does; unknown RTTs cost PETALS' default.
        self._half_ss = np.minimum(np.where(np.isnan(pm.swarm.rtt_raw_server_ms), unknown, pm.swarm.rtt_raw_server_ms) / 2, 5000.0)
        self._half_cs = np.minimum(pm.rtt_raw_ms / 2, 5000.0)
        self._overhead = t.petals_overhead_ms
        self.penalty_ms = t.petals_cache_penalty_ms
        self.span = placement.n_blocks.tolist()
        # Sessions a server admits under the authors' test (PETALS: ⌊B_cache/s_c⌋; Opt Num: ⌊(M − s_m m)/(s_c m)⌋).
        self.session_capacity = None if session_capacity is None else [int(x) for x in session_capacity]
        self._penalised: dict[tuple, tuple[list[int], list[int]]] = {}  # (client, lengths, penalties) → chain

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        src = g.src
        hop = np.where(src == SOURCE, self._half_cs[client, g.dst], self._half_ss[np.maximum(src, 0), g.dst])
        return hop + self._overhead + self.pm.tau_ms[g.dst] * g.k

    def sink_weights(self, client):
        return self._half_cs[client]

    def lacks_cache(self, book: SlotState, j: int) -> bool:
        if self.cache_test == "authors":
            return self.session_capacity[j] - book.sessions[j] == 0
        return book.free(j) < self.span[j]

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        all_up = book.n_down == 0 or all(book.is_up(j) for j in servers)
        if not (self.use_fast_path and all_up and not any(self.lacks_cache(book, j) for j in servers)):
            # A down server is not in PETALS' view of the swarm (docs/model.md §16.1): no edge enters it.
            penal = [self.penalty_ms if book.is_up(j) and self.lacks_cache(book, j) else 0.0
                     if book.is_up(j) else np.inf for j in range(len(self.span))]
            # The chain depends only on the static key and the penalties: recompute only for a new pattern.
            key = (client, l_in, l_out, tuple(penal)) if self.use_fast_path else None
            hit = self._penalised.get(key) if key else None
            if hit is None:
                w = base + np.asarray(penal)[self.graph.dst]
                _, servers, processed = shortest_chain(self.graph, w, self.sink_weights(client))
                if key:
                    if len(self._penalised) >= 4096:
                        self._penalised.clear()
                    self._penalised[key] = (servers, processed)
            else:
                servers, processed = hit
        return Route(servers, processed, self.chain_waits(book, now, servers, processed))
