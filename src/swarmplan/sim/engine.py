"""The online discrete-event simulator (docs/model.md §9; Sun et al. 2025 §3.5, §9).

A plain event loop: arrivals in time order, completions on a heap (released lazily when time passes
them). Each arrival is routed once by the policy, books its slots on every chain server until completion
and, if some server is short of slots, waits with PETALS-style back-off. Memory is the only contended
resource: a session's speed does not depend on load (docs/model.md §3.5).
"""

from __future__ import annotations

from swarmplan.perf.model import PerfModel
from swarmplan.perf.timing import backoff_ms
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.workload import Workload
from swarmplan.sim.recording import RunRecorder
from swarmplan.sim.result import SimResult, running_slots_peak  # noqa: F401  (re-exported)


def simulate(pm: PerfModel, placement: Placement, workload: Workload, router: Router,
             allocation_delay_ms: float = 0.0, method: str | None = None) -> SimResult:
    t = pm.swarm.timing
    book = SlotBook(placement.cache_slots)
    rec = RunRecorder(pm, workload, allocation_delay_ms)
    first_ms, max_ms = t.backoff_first_ms, t.backoff_max_ms
    max_conc = 0
    for r in range(workload.n):
        now = rec.arrival[r]
        book.advance(now)
        if book.active_requests + 1 > max_conc:
            max_conc = book.active_requests + 1
        route = router.route(book, now, rec.client[r], rec.input_tokens[r], rec.output_tokens[r])
        w_raw = max(route.waits_ms)
        if w_raw == float("inf"):
            raise RuntimeError(f"request {r}: the chosen chain can never fit (router {router.name})")
        b = backoff_ms(w_raw, first_ms, max_ms) if w_raw > 0 else 0.0
        completion = rec.serve(r, route.servers, route.processed, b, w_raw)
        book.book(r, completion, route.servers, route.need)
    return rec.result(method or router.name, placement, max_conc)
