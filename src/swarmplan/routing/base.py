"""What every routing policy provides to the simulator, and the per-(client, lengths) static costs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.chains import BlockChains, ChainGraph, block_chains, build_chain_graph, shortest_chain
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.ready import ReadyTimes
from swarmplan.routing.state import SlotState


@dataclass
class Route:
    servers: list[int]
    processed: list[int]
    waits_ms: list[float]  # raw wait at each chain server
    units: int = 1  # slots booked per processed block (docs/model.md §17.3)

    @property
    def need(self) -> list[int]:
        """Slots the request books on each chain server: processed blocks × units."""
        return [k * self.units for k in self.processed]


def require_static_chain(servers, units: int, l_in: int, l_out: int) -> None:
    """A router's unpenalised optimum must exist: one clear error when PETALS' max-length reservation
    (``units`` > 1 slots per request, docs/model.md §17) leaves no chain, else the placement has none."""
    if servers:
        return
    if units > 1:
        raise SwarmplanError(
            "workload.petals_reserve",
            f"a request of {l_in} + {l_out} tokens fits no server's PETALS attention cache on any chain",
            "raise model.attn_cache_tokens or use petals_reserve: cache_tokens",
        )
    raise RuntimeError("the placement has no feasible chain")


class Router:
    """Chooses a chain per arriving request. Subclasses give static edge weights and a state-aware route."""

    name = "router"

    def __init__(self, pm: PerfModel, placement: Placement, use_fast_path: bool = True):
        self.pm = pm
        self.placement = placement
        self.use_fast_path = use_fast_path
        self._static: dict[tuple, tuple[list[int], list[int], np.ndarray]] = {}
        self._ready: dict[int, ReadyTimes] = {}  # per units: when each edge slot frees (slot_waits)

    @cached_property
    def graph(self) -> ChainGraph:
        """The edge list (≈ N² m̄ / L edges), built only by policies whose weights need it (PETALS')."""
        return build_chain_graph(self.placement.start, self.placement.n_blocks, self.pm.L)

    @cached_property
    def _cap_dst(self) -> np.ndarray:
        return np.asarray(self.placement.cache_slots)[self.graph.dst]

    @cached_property
    def edge_fits(self) -> np.ndarray:
        # An edge needing more slots than its server has can never be used (docs/model.md §9.3 guard).
        return self.graph.k <= self._cap_dst

    @cached_property
    def blocks(self) -> BlockChains:
        """The same DAG by (server, k) slots, for weights that depend on nothing else (docs/model.md §8.2)."""
        return block_chains(self.placement.start, self.placement.n_blocks, self.pm.L)

    @cached_property
    def _cap_slot(self) -> np.ndarray:
        return np.asarray(self.placement.cache_slots)[self.blocks.slot_server]

    def slot_waits(self, book: SlotState, now: float, units: int = 1) -> np.ndarray:
        """``edge_waits`` per (server, k) slot that is an edge. On a ``SlotBook`` the instants at which slots
        free are kept per units and redone only for servers whose slots changed (docs/model.md §9.5); any
        other state is asked afresh (``slot_waits_reference``)."""
        cache = self.ready_times(book, units)
        if cache is None:
            return self.slot_waits_reference(book, now, units)
        return cache.waits(book, now)

    def ready_times(self, book: SlotState, units: int = 1) -> ReadyTimes | None:
        """The kept per-slot instants for this units (``slot_waits``), or None where they are not kept."""
        if getattr(book, "changed_since", None) is None or not self.use_fast_path:
            return None
        cache = self._ready.get(units)
        if cache is None:
            if len(self._ready) >= 8:  # units vary per request only under max-length reservation (§17.3)
                del self._ready[next(iter(self._ready))]
            cache = self._ready[units] = ReadyTimes(self._edge_slots, self.blocks.n_slots, units)
        return cache

    def slot_waits_reference(self, book: SlotState, now: float, units: int = 1) -> np.ndarray:
        """``slot_waits`` from scratch: only servers short of slots are asked."""
        waits = np.zeros(self.blocks.n_slots)
        free, wait = book.free, book.wait_ms
        for j, top, ks, slots in self._edge_slots:
            f = free(j)
            if f < top * units:
                for k, s in zip(ks, slots):
                    if f < k * units:
                        waits[s] = wait(j, k * units, now)
        return waits

    @cached_property
    def _edge_slots(self) -> list[tuple[int, int, list[int], list[int]]]:
        """Per held server: (server, largest k of an edge, the k of its edges, their slots)."""
        bc = self.blocks
        out = []
        for j in np.flatnonzero(bc.n_blocks > 0).tolist():
            slots = np.arange(bc.offset[j], bc.offset[j] + bc.n_blocks[j])
            slots = slots[bc.slot_edge[slots]]
            if len(slots):
                ks = bc.slot_k[slots].tolist()
                out.append((j, max(ks), ks, slots.tolist()))
        return out

    def static_weights(self, client: int, l_in: int, l_out: int) -> np.ndarray:
        raise NotImplementedError

    def sink_weights(self, client: int) -> np.ndarray | None:
        return None

    def units(self, l_in: int, l_out: int) -> int:
        """Slots per processed block for a request of these lengths (docs/model.md §17.3; 1 by default)."""
        return self.pm.slot_units(self.placement.memory_model, l_in, l_out)

    def static_route(self, client: int, l_in: int, l_out: int):
        key = (client, l_in, l_out)
        hit = self._static.get(key)
        if hit is None:
            u = self.units(l_in, l_out)
            fits = self.edge_fits if u == 1 else self.graph.k * u <= self._cap_dst
            w = np.where(fits, self.static_weights(client, l_in, l_out), np.inf)
            cost, servers, processed = shortest_chain(self.graph, w, self.sink_weights(client))
            require_static_chain(servers, u, l_in, l_out)
            hit = (servers, processed, w)
            self._static[key] = hit
        return hit

    def route(self, book: SlotState, now: float, client: int, l_in: int, l_out: int) -> Route:
        raise NotImplementedError

    def edge_waits(self, book: SlotState, now: float, units: int = 1) -> np.ndarray:
        """docs/model.md §9.3 — the wait each edge's server would impose for the edge's k slots (0 if free);
        k × units under PETALS' max-length reservation (§17.3). An edge's wait is its slot's."""
        return self.slot_waits(book, now, units)[self._edge_slot]

    @cached_property
    def _edge_slot(self) -> np.ndarray:
        return self.blocks.edge_slots(self.graph)

    def edge_waits_reference(self, book: SlotState, now: float, units: int = 1) -> np.ndarray:
        """``edge_waits`` edge by edge, asking the state for every edge whose server is short."""
        g = self.graph
        cache: dict[tuple[int, int], float] = {}
        waits = np.zeros(g.n_edges)
        for e, (j, k) in enumerate(zip(g.dst.tolist(), (g.k * units).tolist())):
            if book.free(j) < k:
                w = cache.get((j, k))
                if w is None:
                    w = cache[(j, k)] = book.wait_ms(j, k, now)
                waits[e] = w
        return waits

    def chain_waits(self, book: SlotState, now: float, servers, processed, units: int = 1) -> list[float]:
        return [book.wait_ms(j, k * units, now) for j, k in zip(servers, processed)]
