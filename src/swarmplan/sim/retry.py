"""PETALS' real client: allocation fails at once, back off, re-route (docs/model.md §9.4; petals.md §6–7.4).

The stock PETALS client sends no allocation timeout, so a session that does not fit fails immediately
and the client retries after min(1 s · 2^(a−1), 60 s) — 1, 2, 4, … 60 s (the immediate first retry of
PETALS is skipped: with nothing changed it would fail again) — routing afresh each time with the swarm
as it is then. Unlike the paper's model (route once, book at arrival, wait for that chain), a failed
request holds no memory while it backs off. A session a server failure cuts starts that sequence again.
"""

from __future__ import annotations

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.workload import Workload
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.core import REQUEST
from swarmplan.sim.result import SimResult
from swarmplan.sim.swarm_handler import Rejoin, SlotBookHandler


class RetryingClient:
    """Wraps a router: the request starts only on a chain with room now, else retries later."""

    def __init__(self, router: Router):
        self.router = router
        self.name = f"{router.name}-retry"


def retry_delay_ms(attempt: int, first_ms: float, max_ms: float) -> float:
    """docs/model.md §9.4 — delay before retry number ``attempt`` (1, 2, …): min(first · 2^(attempt−1), max)."""
    return min(first_ms * 2 ** (attempt - 1), max_ms)


class Retrying(SlotBookHandler):
    def __init__(self, pm, placement, workload, client: RetryingClient, allocation_delay_ms=0.0, churn=None, rejoin=None):
        super().__init__(pm, placement, workload, allocation_delay_ms, churn, rejoin)
        self.router = client.router
        self.book = SlotBook(placement.cache_slots)
        self.attempts = [0] * workload.n
        t = pm.swarm.timing
        self.first_ms, self.max_ms = t.backoff_first_ms, t.backoff_max_ms

    def on_arrival(self, r: int, now: float) -> None:
        self.in_system += 1
        if self.in_system > self.max_conc:
            self.max_conc = self.in_system
        self.attempt(r, now)

    def on_request(self, r: int, now: float) -> None:
        self.attempt(r, now)

    def attempt(self, r: int, now: float) -> None:
        rec, book = self.rec, self.book
        route = self.router.route(book, now, rec.client[r], rec.input_tokens[r], rec.output_tokens[r])
        servers = route.servers
        if not servers:
            self.stall(r)
            return
        # Route.need: slots per server, k × the request's units under PETALS' max-length reservation (§17.3).
        need, free, failed = route.need, book.free, None
        for j, k in zip(servers, need):
            if free(j) < k:
                failed = j
                break
        report = getattr(self.router, "attempt_result", None)  # PETALS' bans (docs/model.md §17.5)
        if report is not None:
            report(now, servers, failed)
        if failed is None:
            if r in rec.cut_since:
                completion = rec.resume(r, now, servers, route.processed, 0.0)
            else:
                completion = rec.serve(r, servers, route.processed, now - rec.arrival[r])
            book.book(r, completion, servers, need)
            self.schedule_completion(r, completion)
        else:
            self.attempts[r] += 1
            self.core.push(now + retry_delay_ms(self.attempts[r], self.first_ms, self.max_ms), REQUEST, r)

    # --- churn ---------------------------------------------------------------------------------------
    def retry_after_change(self, r: int, now: float) -> None:
        self.attempt(r, now)

    def forget_attempts(self, r: int) -> None:
        self.attempts[r] = 0


def simulate_retry(
    pm: PerfModel,
    placement: Placement,
    workload: Workload,
    client: RetryingClient,
    allocation_delay_ms: float = 0.0,
    method: str | None = None,
    churn: ChurnSchedule | None = None,
    rejoin: Rejoin | None = None,
) -> SimResult:
    return Retrying(pm, placement, workload, client, allocation_delay_ms, churn, rejoin).run(method or client.name)
