"""When each (server, k) slot of a routing graph frees, kept between arrivals (docs/model.md §9.5).

A wait w_j(k) = (the instant k slots are free at j) − now (docs/model.md §9.3), and that instant depends only
on j's bookings. So a router keeps, per slot, whether j is short of k slots and that instant, and after a
change redoes only the servers whose ``SlotBook.version`` moved: under load an arrival books a handful of
servers and a completion releases a handful, while a router asks about every slot of every server.
"""

from __future__ import annotations

import numpy as np


class ReadyTimes:
    """Per edge slot (j, k): short[s] = free(j) < k·units, ready[s] = when k·units slots free at j (if short).
    ``waits`` gives exactly ``Router.slot_waits_reference``: ready − now where short, else 0."""

    def __init__(self, edge_slots, n_slots: int, units: int):
        # per held server with edge slots: (server, slots needed by its largest k, needs per slot, slots)
        self.servers = [(j, top * units, [k * units for k in ks], np.asarray(slots)) for j, top, ks, slots in edge_slots]
        self.short = np.zeros(n_slots, dtype=bool)
        self.ready = np.zeros(n_slots)
        self.token: int | None = None
        self.changes = -1
        self.seen: list[int] = []
        self.any_short: list[bool] = []

    def waits(self, book, now: float) -> np.ndarray:
        if book.token != self.token:  # another book: start over
            self.token, self.changes = book.token, -1
            self.seen = [-1] * len(book.version)
            self.any_short = [True] * len(self.servers)
        if book.changes != self.changes:
            self.changes = book.changes
            version, seen, any_short = book.version, self.seen, self.any_short
            for i, (j, top, needs, slots) in enumerate(self.servers):
                if version[j] != seen[j]:
                    seen[j] = version[j]
                    any_short[i] = self._redo(book, j, top, needs, slots, any_short[i])
        return np.where(self.short, self.ready - now, 0.0)

    def _redo(self, book, j: int, top: int, needs: list[int], slots: np.ndarray, was_short: bool) -> bool:
        free = book.free(j)
        if free >= top:  # every k fits now
            if was_short:
                self.short[slots] = False
            return False
        short = [n > free for n in needs]
        self.short[slots] = short
        if all(short):
            self.ready[slots] = book.ready_ms_many(j, needs)
        else:
            sel = slots[short]
            self.ready[sel] = book.ready_ms_many(j, [n for n, s in zip(needs, short) if s])
        return True
