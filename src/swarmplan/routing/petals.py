"""PETALS' min-latency inference routing as the paper models it (docs/model.md §4.5; petals.md §7.2).

Edge weights: source → j: RTT(c,j)/2 + 18 ms + τ_j m_j; i → j: RTT(i,j)/2 + 18 ms + τ_j k; j → sink:
RTT(c,j)/2; plus a 10 s penalty into a server without cache room. Two cache tests:
* ``petals`` (default, PETALS' real client): penalty when free slots < the server's whole span m_j
  (2 · max_length · span ≤ cache_tokens_left, in slot units);
* ``authors``: the authors' simulator, penalty only when free sessions are exactly 0 (BPRR §14 item 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from swarmplan.perf.chains import SOURCE, shortest_chain_pairs
from swarmplan.routing.base import Route, Router, require_static_chain
from swarmplan.routing.state import SlotState

CacheTest = Literal["petals", "authors"]


@dataclass(frozen=True)
class PairWeights:
    """A (client, units)'s static weights in the form ``shortest_chain_pairs`` reads (docs/model.md §8.3): the
    source hop RTT(c,j)/2 + 18 ms per server and whether each (server, k) slot fits its cache."""

    hop_src: np.ndarray
    fits: np.ndarray


class PetalsRouter(Router):
    name = "petals"

    def __init__(self, pm, placement, cache_test: CacheTest = "petals", session_capacity=None, use_fast_path=True):
        super().__init__(pm, placement, use_fast_path)
        self.cache_test = cache_test
        t = pm.swarm.timing
        unknown = t.petals_unknown_rtt_ms
        # One-way delay estimate: rtt/2, capped at 5 s as PETALS does; unknown RTTs cost PETALS' default. Kept
        # per node (servers at one node share it, docs/model.md §11.2): entry (i, j) is _half_node[node_i, node_j].
        rtt = pm.swarm.rtt_raw_server_ms
        self._node = rtt.node
        self._half_node = np.minimum(np.where(np.isnan(rtt.node_ms), unknown, rtt.node_ms) / 2, 5000.0)
        self._half_cs = np.minimum(pm.rtt_raw_ms / 2, 5000.0)
        self._overhead = t.petals_overhead_ms
        self._hop_node = self._half_node + self._overhead  # the hop part of an edge's weight, per node pair
        self.penalty_ms = t.petals_cache_penalty_ms
        self.span = placement.n_blocks.tolist()
        # Sessions a server admits under the authors' test (PETALS: ⌊B_cache/s_c⌋; Opt Num: ⌊(M − s_m m)/(s_c m)⌋).
        self.session_capacity = None if session_capacity is None else [int(x) for x in session_capacity]
        # docs/model.md §17.5 — a stale view: free slots as of the last announce (None: live).
        self.view_period_ms = t.petals_view_period_ms
        self._view_epoch: int | None = None
        self._announced: list[int] = []
        self._view_free: list[int] = []
        # docs/model.md §17.5 — the client's refresh period and bans (None: none).
        self.refresh_ms = t.petals_refresh_ms
        self.ban_ms = t.petals_ban_ms
        self._refresh_epoch: int | None = None
        n = len(self.span)
        self._fails = [0] * n
        self._ban_until = [0.0] * n
        self._excluded = np.zeros(n, dtype=bool)
        self._any_excluded = False  # kept with _excluded: the hot path reads a bool, not an array
        self._units_per_token = pm.slot_units(placement.memory_model, 1, 1) != 1  # §17.3 reservation by length
        self._kept: list | None = None  # _route_kept's state: book token, units, changes seen, penalties, chains
        self._holders = [
            np.flatnonzero((placement.start <= b) & (placement.start + placement.n_blocks > b)) for b in range(1, pm.L + 1)
        ]

    def static_weights(self, client, l_in, l_out):
        """Per edge of ``graph`` (the definition; routing itself never builds the edges, see ``static_route``)."""
        g = self.graph
        src, node = g.src, self._node
        hop = np.where(src == SOURCE, self._half_cs[client, g.dst], self._half_node[node[np.maximum(src, 0)], node[g.dst]])
        return hop + self._overhead + self.pm.tau_ms[g.dst] * g.k

    @cached_property
    def _own(self) -> np.ndarray:
        """τ_j k per (server, k) slot: the compute part of an edge's weight."""
        return self.pm.tau_ms[self.blocks.slot_server] * self.blocks.slot_k

    def static_route(self, client, l_in, l_out):
        """The unpenalised optimum per (client, lengths) and its ``PairWeights``: ``Router.static_route`` on the
        edge list gives the same chain (tested); here the edges are never built (docs/model.md §8.3)."""
        key = (client, l_in, l_out)
        hit = self._static.get(key)
        if hit is None:
            u = self.units(l_in, l_out)
            base = PairWeights(self._half_cs[client] + self._overhead, self.blocks.slot_k * u <= self._cap_slot)
            _, servers, processed = self.penalised_chain(client, base, None)
            require_static_chain(servers, u, l_in, l_out)
            hit = self._static[key] = (servers, processed, base)
        return hit

    def penalised_chain(self, client, base: PairWeights, penalty):
        """(cost, servers, blocks) of the cheapest chain with ``penalty[j]`` added to every edge into j (None: 0)."""
        return shortest_chain_pairs(
            self.blocks, self._node, self._hop_node, base.hop_src, self._own, base.fits, penalty, self.sink_weights(client)
        )

    def sink_weights(self, client):
        return self._half_cs[client]

    def lacks_cache(self, book: SlotState, j: int, units: int = 1) -> bool:
        """PETALS' test 2·max_length·span ≤ cache_tokens_left, in slots: free < span × units (§4.5, §17.3),
        on the announced (stale) free slots when a view period is set (§17.5)."""
        if self.cache_test == "authors":
            return self.session_capacity[j] - book.sessions[j] == 0
        free = book.free(j) if self.view_period_ms is None else self._view_free[j]
        return free < self.span[j] * units

    def _refresh_view(self, book: SlotState, now: float) -> None:
        """docs/model.md §17.5 — servers announce cache_tokens_left every period (the first routing call of a
        new period reads the state then; all servers announce in phase); the client takes the announcements,
        and drops the servers banned now, at its own refreshes (at once when it has no refresh period)."""
        epoch = int(now // self.view_period_ms)
        if epoch != self._view_epoch:
            self._view_epoch = epoch
            self._announced = [book.free(j) for j in range(len(self.span))]
        if self.refresh_ms is None:
            self._view_free = self._announced
            return
        epoch = int(now // self.refresh_ms)
        if epoch != self._refresh_epoch:
            self._refresh_epoch = epoch
            self._view_free = list(self._announced)
            banned = np.array([until > now for until in self._ban_until])
            for holders in self._holders:  # a block must keep a server: then its holders' bans are ignored
                if len(holders) and banned[holders].all():
                    banned[holders] = False
            self._excluded = banned
            self._any_excluded = bool(banned.any())

    def attempt_result(self, now: float, servers, failed: int | None) -> None:
        """docs/model.md §17.5 — the retrying client reports an attempt: a failed allocation bans that server
        for ban · 2^(k−1) after its k-th consecutive failure (hivemind Blacklist); a success clears its bans."""
        if self.ban_ms is None:
            return
        if failed is None:
            for j in servers:
                self._fails[j], self._ban_until[j] = 0, 0.0
        else:
            self._fails[failed] += 1
            self._ban_until[failed] = now + self.ban_ms * 2 ** (self._fails[failed] - 1)

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        if self.view_period_ms is not None:
            self._refresh_view(book, now)
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = l_in + l_out if self._units_per_token else 1  # = self.units(l_in, l_out), inlined: once per arrival
        if self.use_fast_path and self.view_period_ms is None and getattr(book, "changed_since", None) is not None:
            servers, processed = self._route_kept(book, client, l_in, l_out, u, servers, processed, base)
            return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
        excluded = self._any_excluded
        all_up = book.n_down == 0 or all(book.is_up(j) for j in servers)
        if excluded or not (self.use_fast_path and all_up and not any(self.lacks_cache(book, j, u) for j in servers)):
            # A down server is not in PETALS' view of the swarm (docs/model.md §16.1): no edge enters it.
            penal = self._penalties(book, u)
            penal[self._excluded] = np.inf
            _, servers, processed = self.penalised_chain(client, base, penal)
        return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)

    def _penalties(self, book: SlotState, u: int) -> np.ndarray:
        """Per server: ∞ if down, the cache penalty if it lacks room (§4.5), else 0."""
        return np.array([self._penalty(book, j, u) for j in range(len(self.span))])

    def _penalty(self, book: SlotState, j: int, u: int) -> float:
        return (self.penalty_ms if self.lacks_cache(book, j, u) else 0.0) if book.is_up(j) else np.inf

    def _route_kept(self, book, client, l_in, l_out, u, servers, processed, base):
        """``route`` on a live view with kept penalties (docs/model.md §9.5): the per-server penalties are
        redone only for servers whose slots changed, and the last chain of each (client, lengths) is reused
        while no penalty changed — the same weights give the same chain."""
        kept = self._kept
        if kept is None or kept[0] != book.token or kept[1] != u:
            pen = self._penalties(book, u)
            kept = self._kept = [book.token, u, book.changes, pen, pen.tolist(), 0, {}]
        elif kept[2] != book.changes:
            changed = book.changed_since(kept[2])
            _, _, _, pen, pen_list, _, _ = kept
            for j in range(len(pen_list)) if changed is None else set(changed):
                p = self._penalty(book, j, u)
                if p != pen_list[j]:
                    pen_list[j] = pen[j] = p
                    kept[5] += 1  # the penalties' version
            kept[2] = book.changes
        pen_list = kept[4]
        if all(pen_list[j] == 0.0 for j in servers):  # every chain server up with room: the static optimum
            return servers, processed
        key = (client, l_in, l_out)
        hit = kept[6].get(key)
        if hit is None or hit[0] != kept[5]:
            _, chain, blocks = self.penalised_chain(client, base, kept[3])
            hit = kept[6][key] = (kept[5], chain, blocks)
        return hit[1], hit[2]
