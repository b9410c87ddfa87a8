"""An asyncio event loop on virtual time (docs/runtime.md §8.2).

The step-level prediction runs the live client's own coroutines (its waiting drivers, back-off sleeps and
the policy calls) against simulated servers, so the prediction takes the same decisions as the client. To do
that as a discrete-event simulation, time must jump: this loop's clock is a number that advances, whenever
the loop would block, straight to its next scheduled timer. Nothing waits in real time, and since no real
I/O is registered, the loop never blocks on a socket. Events at the same instant run in the order asyncio
schedules them (first scheduled, first run), so a run is deterministic.
"""

from __future__ import annotations

import asyncio
import selectors


class _JumpingSelector(selectors.BaseSelector):
    """Wraps a real selector (asyncio registers its self-pipe on it) but, instead of sleeping for a select
    timeout, advances the loop's virtual clock by it and polls without waiting."""

    def __init__(self, clock: "VirtualClock"):
        self._real = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj, events, data=None):
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._real.modify(fileobj, events, data)

    def select(self, timeout=None):
        if timeout is not None and timeout > 0:
            self._clock.now_s += timeout
        return self._real.select(0)

    def get_map(self):
        return self._real.get_map()

    def close(self):
        self._real.close()


class VirtualClock:
    def __init__(self):
        self.now_s = 0.0


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` is virtual seconds from 0; sleeping costs no real time."""

    def __init__(self):
        self.clock = VirtualClock()
        super().__init__(_JumpingSelector(self.clock))

    def time(self) -> float:
        return self.clock.now_s


def run_virtual(coro):
    """Run ``coro`` to completion on a fresh virtual-time loop; returns its result."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
