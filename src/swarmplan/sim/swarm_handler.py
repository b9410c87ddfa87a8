"""What the three waiting models share on the event core: request bookkeeping, and what a failure or a
return does to sessions and coverage (docs/model.md §16)."""

from __future__ import annotations

from typing import Callable

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.scenario.workload import Workload
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.core import COMPLETE, SERVER_DOWN, SERVER_UP, EventCore, Handler
from swarmplan.sim.recording import RunRecorder
from swarmplan.sim.result import ChurnRecord, SimResult

Rejoin = Callable[[int, list[bool], Placement], "tuple[Placement, object] | None"]


class SwarmHandler(Handler):
    """Base of the waiting models: owns the core, the recorder and the live set of servers."""

    def __init__(
        self,
        pm: PerfModel,
        placement: Placement,
        workload: Workload,
        allocation_delay_ms: float,
        churn: ChurnSchedule | None = None,
        rejoin: Rejoin | None = None,
    ):
        self.pm, self.placement = pm, placement
        self.churn = churn if churn else None
        self.rec = RunRecorder(pm, workload, allocation_delay_ms, track_segments=self.churn is not None)
        self.core = EventCore(self.rec.arrival)
        self.gen = [0] * workload.n
        self.in_system = 0
        self.max_conc = 0
        self.live = [True] * pm.n_servers
        self.rejoin = rejoin
        self.stalled: list[int] = []  # requests waiting for some chain to come back, in order of stalling
        self._outage_since: float | None = None
        self.longest_outage_ms = 0.0
        self.placement_changes = 0
        if self.churn is not None:
            for ev in self.churn.events:
                self.core.push(ev.time_ms, SERVER_UP if ev.up else SERVER_DOWN, ev.server)

    # --- the run -------------------------------------------------------------------------------------
    def run(self, method: str) -> SimResult:
        self.core.run(self)
        record = None
        if self.churn is not None:
            if self._outage_since is not None:  # still uncovered when the run ends
                self.longest_outage_ms = max(self.longest_outage_ms, self.core.now - self._outage_since)
            record = ChurnRecord(len(self.churn.events), self.longest_outage_ms, self.placement_changes)
        return self.rec.result(method, self.placement, self.max_conc, record)

    def schedule_completion(self, r: int, completion: float) -> None:
        self.core.push(completion, COMPLETE, r, self.gen[r])

    def finished(self, r: int, now: float) -> None:
        self.in_system -= 1
        if self.rec.track:
            self.rec.complete(r, now)

    # --- churn ---------------------------------------------------------------------------------------
    def cut(self, r: int, now: float, failed: int) -> None:
        """The failure of server ``failed`` ends request r's session: its completion no longer counts, its
        time is accounted."""
        self.gen[r] += 1
        self.rec.interrupt(r, now, failed)

    def stall(self, r: int) -> None:
        """No live chain serves r now: it waits until a server returns (counted, never dropped)."""
        self.rec.stalled.add(r)
        self.stalled.append(r)

    def wake_stalled(self, now: float) -> None:
        waiting, self.stalled = self.stalled, []
        for r in waiting:
            self.retry_after_change(r, now)

    def retry_after_change(self, r: int, now: float) -> None:
        raise NotImplementedError

    def on_server_down(self, j: int, now: float) -> None:
        self.live[j] = False
        self.server_failed(j, now)
        self._track_coverage(now)

    def on_server_up(self, j: int, now: float) -> None:
        self.live[j] = True
        if self.rejoin is not None:
            change = self.rejoin(j, self.live, self.placement_now())
            if change is not None:
                self.placement_changes += 1
                self.replace_plan(j, *change)
        self.server_returned(j, now)
        self._track_coverage(now)
        self.wake_stalled(now)

    def placement_now(self) -> Placement:
        return self.placement

    def replace_plan(self, j: int, placement: Placement, policy) -> None:
        raise NotImplementedError

    def server_failed(self, j: int, now: float) -> None:
        raise NotImplementedError

    def server_returned(self, j: int, now: float) -> None:
        raise NotImplementedError

    def _track_coverage(self, now: float) -> None:
        """docs/model.md §16.4 — the longest interval during which some block has no live server."""
        covered = bool((self.placement_now().coverage(self.pm.L, self.live) > 0).all())
        if not covered and self._outage_since is None:
            self._outage_since = now
        elif covered and self._outage_since is not None:
            self.longest_outage_ms = max(self.longest_outage_ms, now - self._outage_since)
            self._outage_since = None


class SlotBookHandler(SwarmHandler):
    """A waiting model whose requests hold KV slots in a ``SlotBook`` and are routed by a router (book-and-wait
    and the retrying client): what a failure, a return and a re-join do to the book is the same for both."""

    book: "object"
    router: "object"

    def on_complete(self, r: int, now: float, generation: int) -> None:
        if generation != self.gen[r]:
            return
        self.book.release(r)
        self.finished(r, now)

    def forget_attempts(self, r: int) -> None:
        """A cut request starts its waiting afresh (the retrying client resets its back-off)."""

    def server_failed(self, j: int, now: float) -> None:
        holders = self.book.holders(j)
        for r in holders:
            self.book.release(r)
            self.cut(r, now, j)
            self.forget_attempts(r)
        self.book.set_down(j)
        for r in sorted(holders):
            self.retry_after_change(r, now)

    def server_returned(self, j: int, now: float) -> None:
        self.book.set_up(j)

    def placement_now(self) -> Placement:
        return self.router.placement

    def replace_plan(self, j: int, placement: Placement, policy) -> None:
        self.router = getattr(policy, "router", policy)  # a RetryingClient wraps its router
        self.book.set_up(j, int(placement.cache_slots[j]))
