"""KV-slot booking per server and the waiting estimate (docs/model.md §9.2–9.3; Sun et al. 2025 §8.1 step 3).

A request books n_k slots on every chain server from its routing instant until its completion. Release is
lazy: bookings whose completion ≤ now are dropped when time advances. The wait for k slots at server j is
the time until enough of the current bookings complete (earliest completion first).
"""

from __future__ import annotations

import heapq
from bisect import insort

import numpy as np


class SlotBook:
    def __init__(self, capacity: np.ndarray):
        self.capacity = [int(c) for c in capacity]
        n = len(self.capacity)
        self.used = [0] * n
        self.sessions = [0] * n
        self.by_server: list[list[tuple[float, int, int]]] = [[] for _ in range(n)]  # sorted (completion, req, k)
        self._heap: list[tuple[float, int]] = []
        self._chains: dict[int, tuple[list[int], list[int]]] = {}

    def advance(self, now: float) -> None:
        """Release every booking that completed at or before ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, r = heapq.heappop(heap)
            servers, ks = self._chains.pop(r)
            for j, k in zip(servers, ks):
                self.used[j] -= k
                self.sessions[j] -= 1
                self.by_server[j].pop(0)

    @property
    def active_requests(self) -> int:
        return len(self._chains)

    def book(self, r: int, completion: float, servers: list[int], ks: list[int]) -> None:
        for j, k in zip(servers, ks):
            self.used[j] += k
            self.sessions[j] += 1
            insort(self.by_server[j], (completion, r, k))
        heapq.heappush(self._heap, (completion, r))
        self._chains[r] = (servers, ks)

    def free(self, j: int) -> int:
        return self.capacity[j] - self.used[j]

    def wait_ms(self, j: int, k: int, now: float) -> float:
        """docs/model.md §9.3 — time until k slots are free at j; inf if j has fewer than k slots at all."""
        free = self.capacity[j] - self.used[j]
        if free >= k:
            return 0.0
        if k > self.capacity[j]:
            return float("inf")
        need = k - free
        for completion, _, held in self.by_server[j]:
            need -= held
            if need <= 0:
                return completion - now
        return float("inf")  # unreachable when bookings are consistent
