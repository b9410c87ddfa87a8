"""One event core for every waiting model (docs/model.md §9, §16; docs/architecture.md "Simulator").

A single heap of ``(time, order, key, generation)`` events with an explicit order for simultaneous events:
completions release their slots first, then servers fail, then servers return, then requests (arrivals and
retries) are served in request order. Arrivals come from the workload's sorted list and are merged with the
heap rather than pushed onto it (the heap stays small). A cancelled event is skipped by its generation: a
request whose session a failure cut gets a new generation, so its old completion no longer counts.

What happens at each event is the waiting model's business (``Handler``): book-and-wait (``engine``), the
retrying client (``retry``) and the central queue (``central``). The core knows nothing of slots or chains.
"""

from __future__ import annotations

import heapq

COMPLETE, SERVER_DOWN, SERVER_UP, REQUEST = 0, 1, 2, 3


class EventCore:
    def __init__(self, arrivals_ms: list[float]):
        self.arrivals = arrivals_ms
        self.heap: list[tuple[float, int, int, int]] = []
        self.now = 0.0

    def push(self, time_ms: float, order: int, key: int, generation: int = 0) -> None:
        heapq.heappush(self.heap, (time_ms, order, key, generation))

    def run(self, handler: "Handler") -> None:
        heap, arrivals = self.heap, self.arrivals
        pop = heapq.heappop
        on_arrival, on_complete = handler.on_arrival, handler.on_complete
        i, n, now = 0, len(arrivals), self.now
        while True:
            if i < n:
                a = arrivals[i]
                if heap:
                    top = heap[0]
                    t = top[0]
                    if t < a or (t == a and (top[1] < REQUEST or top[2] < i)):
                        pop(heap)
                        now = t
                        if top[1] == COMPLETE:
                            on_complete(top[2], t, top[3])
                        else:
                            self._dispatch(handler, top)
                        continue
                now = a
                on_arrival(i, a)
                i += 1
            elif heap:
                top = pop(heap)
                now = top[0]
                if top[1] == COMPLETE:
                    on_complete(top[2], now, top[3])
                else:
                    self._dispatch(handler, top)
            else:
                self.now = now
                return

    @staticmethod
    def _dispatch(handler: "Handler", event) -> None:
        t, order, key, _ = event
        if order == REQUEST:
            handler.on_request(key, t)
        elif order == SERVER_DOWN:
            handler.on_server_down(key, t)
        else:
            handler.on_server_up(key, t)


class Handler:
    """What a waiting model does at each event; the default ignores churn events (no churn scheduled)."""

    def on_arrival(self, r: int, now: float) -> None:
        raise NotImplementedError

    def on_complete(self, r: int, now: float, generation: int) -> None:
        raise NotImplementedError

    def on_request(self, r: int, now: float) -> None:
        raise NotImplementedError

    def on_server_down(self, j: int, now: float) -> None:
        raise NotImplementedError

    def on_server_up(self, j: int, now: float) -> None:
        raise NotImplementedError
