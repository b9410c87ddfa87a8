"""When each (server, k) slot of a routing graph frees, kept between arrivals (docs/model.md §9.5).

A wait w_j(k) = (the instant k slots are free at j) − now (docs/model.md §9.3), and that instant depends only
on j's bookings. So a router keeps, per slot, whether j is short of k slots and that instant, and after a
change redoes only the servers the book logged as changed (``SlotBook.changed_since``): under load an
arrival books a handful of servers and a completion releases a handful, while a router asks about every
slot of every server.

With numba, the servers to redo go to one compiled call (``_redo``) that walks each server's bookings (the
book's ``rows``) once for all its slots, needs ascending; without it, the book's wait
curve is searched per slot (``SlotBook.ready_ms_many``). Both give the same instants (tests compare them).
"""

from __future__ import annotations

import numpy as np

from swarmplan.perf.jit import ENABLED as JIT_ENABLED
from swarmplan.perf.jit import njit

NONE, ALL, SOME = 0, 1, 2


@njit
def _redo(todo, first, needs, slots, short, ready, done_rows, held_rows):  # pragma: no cover - compiled
    """Per server of ``todo`` (flat: CSR position, server j, free, capacity, bookings): for each of its edge
    slots (``needs``/``slots`` in [first[p], first[p + 1]), needs ascending) short = need > free and, if
    short, ready = the completion of the first booking whose running total of slots reaches need − free
    (docs/model.md §9.3), ∞ when need > capacity or none does. One walk per server: the first such booking
    never moves back as the need grows."""
    for t in range(0, len(todo), 5):
        p, j, free, cap, count = todo[t], todo[t + 1], todo[t + 2], todo[t + 3], todo[t + 4]
        q = 0
        cum = 0
        for e in range(first[p], first[p + 1]):
            s = slots[e]
            need = needs[e]
            if need <= free:
                short[s] = False
                continue
            short[s] = True
            if need > cap:
                ready[s] = np.inf
                continue
            target = need - free
            while q < count and cum < target:
                cum += held_rows[j, q]
                q += 1
            ready[s] = done_rows[j, q - 1] if cum >= target else np.inf


class ReadyTimes:
    """Per edge slot (j, k): short[s] = free(j) < k·units, ready[s] = when k·units slots free at j (if short).
    ``waits`` gives exactly ``Router.slot_waits_reference``: ready − now where short, else 0."""

    def __init__(self, edge_slots, n_slots: int, units: int, compiled: bool | None = None):
        # per held server with edge slots: (slots needed by its largest k, needs per slot ascending, slots)
        self.servers = {j: (top * units, [k * units for k in ks], list(slots)) for j, top, ks, slots in edge_slots}
        self.compiled = JIT_ENABLED if compiled is None else compiled
        # the same as CSR for ``_redo``: server j's slots are needs/slots[first[pos[j]]:first[pos[j] + 1]]
        self.pos = {j: p for p, j in enumerate(self.servers)}
        sizes = [len(v[1]) for v in self.servers.values()]
        self.first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.needs = np.array([n for v in self.servers.values() for n in v[1]], dtype=np.int64)
        self.slots = np.array([s for v in self.servers.values() for s in v[2]], dtype=np.int64)
        self.short = np.zeros(n_slots, dtype=bool)
        self.ready = np.zeros(n_slots)
        self.token: int | None = None
        self.mark = -1  # the book's ``changes`` when last brought up to date
        self.state: dict[int, int] = {}  # per server: NONE, ALL or SOME of its slots short

    def waits(self, book, now: float) -> np.ndarray:
        short, ready = self.refresh(book)
        return np.where(short, ready - now, 0.0)

    def refresh(self, book) -> tuple[np.ndarray, np.ndarray]:
        """Bring ``short``/``ready`` up to date with the book (only the servers changed since) and return them."""
        if book.changes != self.mark or book.token != self.token:
            if self.compiled and getattr(book, "rows", None) is not None:
                self._redo_compiled(book)
            else:
                self._redo_python(book)
            self.mark = book.changes
        return self.short, self.ready

    def _redo_compiled(self, book) -> None:
        changed = book.changed_since(self.mark) if book.token == self.token else None
        if changed is None:
            self.token = book.token
            self.state = {}
            changed = self.servers
        pos, cap, used, count = self.pos, book.capacity, book.used, book.n_bookings
        todo = []
        for j in set(changed):
            p = pos.get(j)
            if p is not None:
                todo += (p, j, cap[j] - used[j], cap[j], count(j))
        if todo:
            done_rows, held_rows = book.rows()
            _redo(
                np.array(todo, dtype=np.int64),
                self.first,
                self.needs,
                self.slots,
                self.short,
                self.ready,
                done_rows,
                held_rows,
            )

    def _redo_python(self, book) -> None:
        changed = book.changed_since(self.mark) if book.token == self.token else None
        if changed is None:  # another book, or too long ago: every server
            self.token = book.token
            self.state = dict.fromkeys(self.servers, SOME)
            changed = self.servers
        servers, state, short, ready = self.servers, self.state, self.short, self.ready
        for j in set(changed):
            got = servers.get(j)
            if got is None:
                continue
            top, needs, slots = got
            free = book.free(j)
            if free >= top:  # every k fits now
                if state[j] != NONE:
                    short[slots] = False
                    state[j] = NONE
                continue
            if needs[0] > free:  # short of every k (needs ascend): the common case under overload
                if state[j] != ALL:
                    short[slots] = True
                    state[j] = ALL
                sel, times = slots, book.ready_ms_many(j, needs)
            else:
                mask = [n > free for n in needs]
                short[slots] = mask
                state[j] = SOME
                sel = [s for s, m in zip(slots, mask) if m]
                times = book.ready_ms_many(j, [n for n, m in zip(needs, mask) if m])
            for s, t in zip(sel, times):
                ready[s] = t
