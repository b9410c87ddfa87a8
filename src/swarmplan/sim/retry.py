"""PETALS' real client: allocation fails at once, back off, re-route (docs/model.md §9.4; petals.md §6–7.4).

The stock PETALS client sends no allocation timeout, so a session that does not fit fails immediately
and the client retries after min(1 s · 2^(a−1), 60 s) — 1, 2, 4, … 60 s (the immediate first retry of
PETALS is skipped: with nothing changed it would fail again) — routing afresh each time with the swarm
as it is then. Unlike the paper's model (route once, book at arrival, wait for that chain), a failed
request holds no memory while it backs off.
"""

from __future__ import annotations

import heapq

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.workload import Workload
from swarmplan.sim.recording import RunRecorder
from swarmplan.sim.result import SimResult


class RetryingClient:
    """Wraps a router: the request starts only on a chain with room now, else retries later."""

    def __init__(self, router: Router):
        self.router = router
        self.name = f"{router.name}-retry"


def retry_delay_ms(attempt: int, first_ms: float, max_ms: float) -> float:
    """docs/model.md §9.4 — delay before retry number ``attempt`` (1, 2, …): min(first · 2^(attempt−1), max)."""
    return min(first_ms * 2 ** (attempt - 1), max_ms)


def simulate_retry(pm: PerfModel, placement: Placement, workload: Workload, client: RetryingClient,
                   allocation_delay_ms: float = 0.0, method: str | None = None) -> SimResult:
    t = pm.swarm.timing
    router = client.router
    book = SlotBook(placement.cache_slots)
    rec = RunRecorder(pm, workload, allocation_delay_ms)
    attempts = [0] * workload.n
    events = [(a, r) for r, a in enumerate(rec.arrival)]  # (time, request): arrivals and retries
    heapq.heapify(events)
    waiting, max_conc = 0, 0
    report = getattr(router, "attempt_result", None)  # docs/model.md §17.5: PETALS' bans
    while events:
        now, r = heapq.heappop(events)
        book.advance(now)
        if attempts[r] == 0:
            max_conc = max(max_conc, book.active_requests + waiting + 1)
        route = router.route(book, now, rec.client[r], rec.input_tokens[r], rec.output_tokens[r])
        failed = next((j for j, k in zip(route.servers, route.need) if book.free(j) < k), None)
        if report is not None:
            report(now, route.servers, failed)
        if failed is None:
            if attempts[r]:
                waiting -= 1
            completion = rec.serve(r, route.servers, route.processed, now - rec.arrival[r])
            book.book(r, completion, route.servers, route.need)
        else:
            if attempts[r] == 0:
                waiting += 1
            attempts[r] += 1
            heapq.heappush(events, (now + retry_delay_ms(attempts[r], t.backoff_first_ms, t.backoff_max_ms), r))
    return rec.result(method or client.name, placement, max_conc)
