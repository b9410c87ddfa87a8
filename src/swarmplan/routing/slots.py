"""KV-slot booking per server and the waiting estimate (docs/model.md §9.2–9.3; Sun et al. 2025 §8.1 step 3).

A request books n_k slots on every chain server from its routing instant until its completion, when the
simulator releases them (or earlier, when a failure cancels them: docs/model.md §16). The wait for k slots
at server j is the time until enough of the current bookings complete (earliest completion first). A
server's capacity can change (0 while it is down); implements ``routing.state.SlotState``.

Waits are read far more often than bookings change (a router asks for every (server, k) of its graph), so
each server keeps its wait curve — cumulative slots released by its bookings in completion order — built on
the first query after a change, and a query is a binary search on it (``wait_ms_reference`` is the scan).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from itertools import accumulate

import numpy as np


class SlotBook:
    def __init__(self, capacity: np.ndarray):
        self.capacity = [int(c) for c in capacity]
        self.nominal = list(self.capacity)  # capacity while up
        n = len(self.capacity)
        self.used = [0] * n
        self.sessions = [0] * n
        self.up = [True] * n
        self.n_down = 0
        self.by_server: list[list[tuple[float, int, int]]] = [[] for _ in range(n)]  # sorted (completion, req, k)
        self._chains: dict[int, tuple[float, list[int], list[int]]] = {}
        self._curve: list[tuple[list[int], list[float]] | None] = [None] * n  # per server: (cumulative held, completions)

    @property
    def active_requests(self) -> int:
        return len(self._chains)

    def holds(self, r: int) -> bool:
        return r in self._chains

    def book(self, r: int, completion: float, servers: list[int], ks: list[int]) -> None:
        for j, k in zip(servers, ks):
            self.used[j] += k
            self.sessions[j] += 1
            insort(self.by_server[j], (completion, r, k))
            self._curve[j] = None
        self._chains[r] = (completion, servers, ks)

    def release(self, r: int) -> None:
        """Free request r's slots everywhere (it completed, or a failure cancelled its session)."""
        completion, servers, ks = self._chains.pop(r)
        for j, k in zip(servers, ks):
            self.used[j] -= k
            self.sessions[j] -= 1
            self._curve[j] = None
            lst = self.by_server[j]
            if lst[0][1] == r:  # the common case: the earliest booking completes first
                lst.pop(0)
            else:
                del lst[bisect_left(lst, (completion, r, k))]

    def holders(self, j: int) -> list[int]:
        """Requests holding slots on server j, earliest completion first."""
        return [r for _, r, _ in self.by_server[j]]

    def set_down(self, j: int) -> None:
        """Server j fails: no capacity until ``set_up``. Its holders must be released first."""
        if self.used[j]:
            raise RuntimeError(f"server {j} still has bookings")
        if self.up[j]:
            self.up[j], self.capacity[j] = False, 0
            self.n_down += 1

    def set_up(self, j: int, capacity: int | None = None) -> None:
        """Server j is back with its nominal capacity (or a new one, if it re-chose its blocks)."""
        if capacity is not None:
            self.nominal[j] = int(capacity)
        if not self.up[j]:
            self.up[j] = True
            self.n_down -= 1
        self.capacity[j] = self.nominal[j]

    def is_up(self, j: int) -> bool:
        return self.up[j]

    def free(self, j: int) -> int:
        return self.capacity[j] - self.used[j]

    def wait_ms(self, j: int, k: int, now: float) -> float:
        """docs/model.md §9.3 — time until k slots are free at j; inf if j has fewer than k slots at all."""
        free = self.capacity[j] - self.used[j]
        if free >= k:
            return 0.0
        if k > self.capacity[j]:
            return float("inf")
        curve = self._curve[j]
        if curve is None:
            bookings = self.by_server[j]
            curve = self._curve[j] = (list(accumulate(b[2] for b in bookings)), [b[0] for b in bookings])
        at = bisect_left(curve[0], k - free)  # the first booking whose completion frees enough slots
        return curve[1][at] - now if at < len(curve[1]) else float("inf")

    def wait_ms_reference(self, j: int, k: int, now: float) -> float:
        """The definition of ``wait_ms``: scan the bookings, earliest completion first."""
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
