"""When each (server, k) slot of a routing graph frees, kept between arrivals (docs/model.md §9.5).

A wait w_j(k) = (the instant k slots are free at j) − now (docs/model.md §9.3), and that instant depends only
on j's bookings. So a router keeps, per slot, whether j is short of k slots and that instant, and after a
change redoes only the servers the book logged as changed (``SlotBook.changed_since``): under load an
arrival books a handful of servers and a completion releases a handful, while a router asks about every
slot of every server.
"""

from __future__ import annotations

import numpy as np


class ReadyTimes:
    """Per edge slot (j, k): short[s] = free(j) < k·units, ready[s] = when k·units slots free at j (if short).
    ``waits`` gives exactly ``Router.slot_waits_reference``: ready − now where short, else 0."""

    def __init__(self, edge_slots, n_slots: int, units: int):
        # per held server with edge slots: (slots needed by its largest k, needs per slot ascending, slots)
        self.servers = {j: (top * units, [k * units for k in ks], np.asarray(slots)) for j, top, ks, slots in edge_slots}
        self.short = np.zeros(n_slots, dtype=bool)
        self.ready = np.zeros(n_slots)
        self.token: int | None = None
        self.mark = -1  # the book's ``changes`` when last brought up to date
        self.any_short: dict[int, bool] = {}

    def waits(self, book, now: float) -> np.ndarray:
        if book.changes != self.mark or book.token != self.token:
            changed = book.changed_since(self.mark) if book.token == self.token else None
            if changed is None:  # another book, or too long ago: every server
                self.token = book.token
                self.any_short = dict.fromkeys(self.servers, True)
                changed = self.servers
            servers, any_short = self.servers, self.any_short
            for j in set(changed):
                got = servers.get(j)
                if got is not None:
                    any_short[j] = self._redo(book, j, *got, any_short[j])
            self.mark = book.changes
        return np.where(self.short, self.ready - now, 0.0)

    def _redo(self, book, j: int, top: int, needs: list[int], slots: np.ndarray, was_short: bool) -> bool:
        free = book.free(j)
        if free >= top:  # every k fits now
            if was_short:
                self.short[slots] = False
            return False
        if needs[0] > free:  # short of every k (needs ascend): the common case under overload
            self.short[slots] = True
            self.ready[slots] = book.ready_ms_many(j, needs)
            return True
        short = [n > free for n in needs]
        self.short[slots] = short
        sel = slots[short]
        self.ready[sel] = book.ready_ms_many(j, [n for n, s in zip(needs, short) if s])
        return True
