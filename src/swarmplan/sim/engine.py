"""The paper's book-and-wait model on the event core (docs/model.md §9; Sun et al. 2025 §3.5, §9).

Each arrival is routed once by the policy, books its slots on every chain server until completion and, if
some server is short of slots, waits with PETALS-style back-off. Memory is the only contended resource: a
session's speed does not depend on load (docs/model.md §3.5). A failure cuts the sessions on the failed
server; each is routed again by the same policy and replays its prefix (docs/model.md §16).
"""

from __future__ import annotations

from swarmplan.perf.model import PerfModel
from swarmplan.perf.timing import backoff_ms
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.workload import Workload
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.result import SimResult, running_slots_peak  # noqa: F401  (re-exported)
from swarmplan.sim.swarm_handler import Rejoin, SlotBookHandler


class BookAndWait(SlotBookHandler):
    def __init__(self, pm, placement, workload, router: Router, allocation_delay_ms=0.0, churn=None, rejoin=None):
        super().__init__(pm, placement, workload, allocation_delay_ms, churn, rejoin)
        self.router = router
        self.book = SlotBook(placement.cache_slots)
        t = pm.swarm.timing
        self.first_ms, self.max_ms = t.backoff_first_ms, t.backoff_max_ms

    def on_arrival(self, r: int, now: float) -> None:
        self.in_system += 1
        if self.in_system > self.max_conc:
            self.max_conc = self.in_system
        self.retry_after_change(r, now)

    def retry_after_change(self, r: int, now: float) -> None:
        """Route r now and book its chain, waiting with back-off for that chain's slots; a request with no
        live chain (churn) waits for a server to return. Serves arrivals, cut and stalled requests alike."""
        rec = self.rec
        route = self.router.route(self.book, now, rec.client[r], rec.input_tokens[r], rec.output_tokens[r])
        w_raw = max(route.waits_ms) if route.servers else float("inf")
        if w_raw == float("inf"):
            if self.churn is None and route.servers:
                raise RuntimeError(f"request {r}: the chosen chain can never fit (router {self.router.name})")
            self.stall(r)
            return
        b = backoff_ms(w_raw, self.first_ms, self.max_ms) if w_raw > 0 else 0.0
        if r in rec.cut_since:
            completion = rec.resume(r, now, route.servers, route.processed, b)
        else:  # first served (at its arrival, or after waiting for coverage since then)
            completion = rec.serve(r, route.servers, route.processed, now - rec.arrival[r] + b, w_raw)
        self.book.book(r, completion, route.servers, route.need)
        self.schedule_completion(r, completion)


def simulate(
    pm: PerfModel,
    placement: Placement,
    workload: Workload,
    router: Router,
    allocation_delay_ms: float = 0.0,
    method: str | None = None,
    churn: ChurnSchedule | None = None,
    rejoin: Rejoin | None = None,
) -> SimResult:
    return BookAndWait(pm, placement, workload, router, allocation_delay_ms, churn, rejoin).run(method or router.name)
