"""When each (server, k) slot of a routing graph frees, kept between arrivals (docs/model.md §9.5).

A wait w_j(k) = (the instant k slots are free at j) − now (docs/model.md §9.3), and that instant depends only
on j's bookings. So a router keeps, per slot, whether j is short of k slots and that instant, and after a
change redoes only the servers the book logged as changed (``SlotBook.changed_since``): under load an
arrival books a handful of servers and a completion releases a handful, while a router asks about every
slot of every server.
"""

from __future__ import annotations

import numpy as np

NONE, ALL, SOME = 0, 1, 2


class ReadyTimes:
    """Per edge slot (j, k): short[s] = free(j) < k·units, ready[s] = when k·units slots free at j (if short).
    ``waits`` gives exactly ``Router.slot_waits_reference``: ready − now where short, else 0."""

    def __init__(self, edge_slots, n_slots: int, units: int):
        # per held server with edge slots: (slots needed by its largest k, needs per slot ascending, slots)
        self.servers = {j: (top * units, [k * units for k in ks], list(slots)) for j, top, ks, slots in edge_slots}
        self.short = np.zeros(n_slots, dtype=bool)
        self.ready = np.zeros(n_slots)
        self.token: int | None = None
        self.mark = -1  # the book's ``changes`` when last brought up to date
        self.state: dict[int, int] = {}  # per server: NONE, ALL or SOME of its slots short

    def waits(self, book, now: float) -> np.ndarray:
        if book.changes != self.mark or book.token != self.token:
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
            self.mark = book.changes
        return np.where(self.short, self.ready - now, 0.0)
