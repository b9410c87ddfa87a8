"""KV-slot booking per server and the waiting estimate (docs/model.md §9.2–9.3; Sun et al. 2025 §8.1 step 3).

A request books n_k slots on every chain server from its routing instant until its completion, when the
simulator releases them (or earlier, when a failure cancels them: docs/model.md §16). The wait for k slots
at server j is the time until enough of the current bookings complete (earliest completion first). A
server's capacity can change (0 while it is down); implements ``routing.state.SlotState``.

Under overload a server's bookings run into the hundreds (waiting requests book too) and every routing call
asks about many (server, k), so each server keeps its bookings' completions and slot counts as two lists in
completion order, and its wait curve (their running total of slots, built by ``itertools.accumulate`` on the
first query after a change); a query is a binary search on it (``wait_ms_reference`` is the booking scan,
the definition).

Every change to a server's slots (booking, release, failure, return) is counted in ``changes`` and logged, so
a router can keep what it derived from the state and redo only the servers that changed since it last looked
(``changed_since``; docs/model.md §9.5); ``token`` tells two books apart.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate, count

import numpy as np

_TOKENS = count()


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
        self._done: list[list[float]] = [[] for _ in range(n)]  # per server: completions, as in by_server
        self._held: list[list[int]] = [[] for _ in range(n)]  # per server: slots of each booking, as in by_server
        # per server: running total of _held plus _shift[j] (None: stale); releasing the earliest booking adds
        # its slots to the shift and booking the latest appends, so the curve rarely needs rebuilding
        self._curve: list[list[int] | None] = [None] * n
        self._shift = [0] * n
        # the same completions and slot counts as arrays (row j: server j's bookings, as many as in _done[j]),
        # for compiled readers (routing/ready.py); kept only once one asked for them (``rows``)
        self.done_rows: np.ndarray | None = None
        self.held_rows: np.ndarray | None = None
        self._chains: dict[int, tuple[float, list[int], list[int]]] = {}
        self.changes = 0  # how many server changes so far (docs/model.md §9.5)
        self._log: list[int] = []  # the servers of the latest changes, the last is change number ``changes``
        self._log_cap = 4 * n + 256
        self.token = next(_TOKENS)  # tells books apart for routers' caches

    @property
    def active_requests(self) -> int:
        return len(self._chains)

    def holds(self, r: int) -> bool:
        return r in self._chains

    def book(self, r: int, completion: float, servers: list[int], ks: list[int]) -> None:
        for j, k in zip(servers, ks):
            self.used[j] += k
            self.sessions[j] += 1
            entry = (completion, r, k)
            lst = self.by_server[j]
            at = len(lst) if not lst or lst[-1] < entry else bisect_left(lst, entry)
            curve = self._curve[j]
            c = len(lst)
            rows = self.done_rows is not None
            if rows and c == self.done_rows.shape[1]:
                self._widen()
            if at == len(lst):
                lst.append(entry)
                self._done[j].append(completion)
                self._held[j].append(k)
                if curve is not None:
                    curve.append((curve[-1] if curve else self._shift[j]) + k)
            else:
                lst.insert(at, entry)
                self._done[j].insert(at, completion)
                self._held[j].insert(at, k)
                self._curve[j] = None
                if rows:
                    done, held = self.done_rows[j], self.held_rows[j]
                    done[at + 1 : c + 1] = done[at:c]  # numpy copies overlapping slices correctly
                    held[at + 1 : c + 1] = held[at:c]
            if rows:
                self.done_rows[j, at] = completion
                self.held_rows[j, at] = k
        self._noted(servers)
        self._chains[r] = (completion, servers, ks)

    def release(self, r: int) -> None:
        """Free request r's slots everywhere (it completed, or a failure cancelled its session)."""
        completion, servers, ks = self._chains.pop(r)
        for j, k in zip(servers, ks):
            self.used[j] -= k
            self.sessions[j] -= 1
            lst = self.by_server[j]
            at = 0 if lst[0][1] == r else bisect_left(lst, (completion, r, k))  # usually the earliest completes
            del lst[at], self._done[j][at], self._held[j][at]
            if self.done_rows is not None:
                c = len(lst)
                done, held = self.done_rows[j], self.held_rows[j]
                done[at:c] = done[at + 1 : c + 1]
                held[at:c] = held[at + 1 : c + 1]
            curve = self._curve[j]
            if at == 0 and curve is not None:
                del curve[0]
                self._shift[j] += k
            else:
                self._curve[j] = None
        self._noted(servers)

    def _widen(self) -> None:
        n, old = self.done_rows.shape
        done, held = np.zeros((n, 2 * old)), np.zeros((n, 2 * old), dtype=np.int64)
        done[:, :old], held[:, :old] = self.done_rows, self.held_rows
        self.done_rows, self.held_rows = done, held

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every server's bookings' completions and slot counts as array rows, earliest completion first (row
        j holds ``n_bookings(j)`` of them); kept up to date from the first call on (rows widen by doubling)."""
        if self.done_rows is None:
            n = len(self._done)
            width = max([8] + [1 << (len(d) - 1).bit_length() for d in self._done if d])
            self.done_rows, self.held_rows = np.zeros((n, width)), np.zeros((n, width), dtype=np.int64)
            for j, (done, held) in enumerate(zip(self._done, self._held)):
                self.done_rows[j, : len(done)] = done
                self.held_rows[j, : len(held)] = held
        return self.done_rows, self.held_rows

    def n_bookings(self, j: int) -> int:
        return len(self._done[j])

    def _noted(self, servers) -> None:
        self._log.extend(servers)
        self.changes += len(servers)
        if len(self._log) > self._log_cap:
            del self._log[: len(self._log) // 2]

    def changed_since(self, mark: int) -> list[int] | None:
        """Servers whose slots changed (booking, release, failure, return) since ``changes`` was ``mark``, with
        repeats; None when the log no longer reaches back that far (then every server may have changed)."""
        back = self.changes - mark
        if back > len(self._log):
            return None
        return self._log[len(self._log) - back :] if back else []

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
        self._changed(j)

    def set_up(self, j: int, capacity: int | None = None) -> None:
        """Server j is back with its nominal capacity (or a new one, if it re-chose its blocks)."""
        if capacity is not None:
            self.nominal[j] = int(capacity)
        if not self.up[j]:
            self.up[j] = True
            self.n_down -= 1
        self.capacity[j] = self.nominal[j]
        self._changed(j)

    def _changed(self, j: int) -> None:
        self._curve[j] = None
        self._noted((j,))

    def is_up(self, j: int) -> bool:
        return self.up[j]

    def free(self, j: int) -> int:
        return self.capacity[j] - self.used[j]

    def _curve_of(self, j: int) -> list[int]:
        curve = self._curve[j]
        if curve is None:
            curve = self._curve[j] = list(accumulate(self._held[j]))
            self._shift[j] = 0
        return curve

    def wait_ms(self, j: int, k: int, now: float) -> float:
        """docs/model.md §9.3 — time until k slots are free at j; inf if j has fewer than k slots at all."""
        free = self.capacity[j] - self.used[j]
        if free >= k:
            return 0.0
        if k > self.capacity[j]:
            return float("inf")
        done = self._done[j]
        at = bisect_left(self._curve_of(j), k - free + self._shift[j])  # the first booking freeing enough slots
        return done[at] - now if at < len(done) else float("inf")

    def ready_ms_many(self, j: int, ks: list[int]) -> list[float]:
        """For each k of ``ks`` the instant k slots are free at j, when j is short of them now (docs/model.md
        §9.3: ``wait_ms(j, k, now)`` = that instant − now); inf if never."""
        free = self.capacity[j] - self.used[j]
        cap = self.capacity[j]
        curve, done = self._curve_of(j), self._done[j]
        free -= self._shift[j]
        n = len(done)
        inf = float("inf")
        return [inf if k > cap or (at := bisect_left(curve, k - free)) >= n else done[at] for k in ks]

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
