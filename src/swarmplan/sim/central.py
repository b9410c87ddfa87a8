"""Central-queue dispatch: JFFC, join-the-fastest-free-chain (docs/model.md §14.3; Sun, He, Hou 2026, Alg. 3).

An orchestrator holds a FCFS queue. An arrival starts on the fastest live chain with a free place (fewer
than c_k jobs), else joins the queue; when a job completes, the head of the queue starts on that chain at
once. A job holds its chain place (and so its KV slots) from its start until it completes. A failure takes
every chain through the failed server out of service until the server returns; their jobs go back to the
head of the queue, keep their tokens and replay their prefix where they restart (docs/model.md §16). With
the workload's exponential service option each job's service time is exponential with the chain's mean
(the assumption of Theorem 4), which a test uses to check the bounds.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain
from swarmplan.scenario.workload import Workload
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.core import COMPLETE
from swarmplan.sim.result import SimResult
from swarmplan.sim.swarm_handler import SwarmHandler


class JffcDispatcher:
    name = "jffc"

    def __init__(self, chains: list[Chain]):
        if not chains:
            raise ValueError("JFFC needs at least one chain")
        self.chains = sorted(chains, key=lambda ch: ch.service_ms)  # fastest first (stable)


class CentralQueue(SwarmHandler):
    def __init__(self, pm, placement, workload, dispatcher: JffcDispatcher, allocation_delay_ms=0.0, churn=None):
        super().__init__(pm, placement, workload, allocation_delay_ms, churn)
        self.chains = dispatcher.chains
        self.caps = [ch.capacity for ch in self.chains]
        self.busy = [0] * len(self.chains)
        self.down_hops = [0] * len(self.chains)  # failed servers on each chain
        self.on_chain = [-1] * workload.n  # running job → chain (−1: not running)
        self._heap = self.core.heap
        self.queue: deque[int] = deque()

    def start(self, r: int, k: int, now: float) -> None:
        ch, rec = self.chains[k], self.rec
        if rec.cut_since and r in rec.cut_since:
            completion = rec.resume(r, now, ch.servers, ch.blocks, 0.0)
        else:
            completion = rec.serve(r, ch.servers, ch.blocks, now - rec.arrival[r])
        self.on_chain[r] = k
        heappush(self._heap, (completion, COMPLETE, r, self.gen[r]))

    def on_arrival(self, r: int, now: float) -> None:
        self.in_system += 1
        if self.in_system > self.max_conc:
            self.max_conc = self.in_system
        busy, caps, down = self.busy, self.caps, self.down_hops
        for k in range(len(busy)):
            if busy[k] < caps[k] and not down[k]:
                busy[k] += 1
                self.start(r, k, now)
                return
        self.enqueue(r)

    def enqueue(self, r: int, front: bool = False) -> None:
        if self.churn is not None and not any(d == 0 for d in self.down_hops):
            self.rec.stalled.add(r)
        if front:
            self.queue.appendleft(r)
        else:
            self.queue.append(r)

    def on_complete(self, r: int, now: float, generation: int) -> None:
        if generation != self.gen[r]:
            return
        k = self.on_chain[r]
        self.on_chain[r] = -1
        if self.queue:
            self.start(self.queue.popleft(), k, now)
        else:
            self.busy[k] -= 1
        self.in_system -= 1
        if self.rec.track:
            self.rec.complete(r, now)

    # --- churn ---------------------------------------------------------------------------------------
    def server_failed(self, j: int, now: float) -> None:
        hit = [k for k, ch in enumerate(self.chains) if j in ch.servers]
        cut = [r for r, k in enumerate(self.on_chain) if k in hit]
        for k in hit:
            self.down_hops[k] += 1
        for r in cut:
            k = self.on_chain[r]
            self.on_chain[r] = -1
            self.busy[k] -= 1
            self.cut(r, now, j)
        for r in reversed(cut):  # back to the head of the queue, in their order
            self.enqueue(r, front=True)
        self.dispatch(now)

    def server_returned(self, j: int, now: float) -> None:
        for k, ch in enumerate(self.chains):
            if j in ch.servers:
                self.down_hops[k] -= 1
        self.dispatch(now)

    def dispatch(self, now: float) -> None:
        """Start queued jobs, head first, on the fastest live chains with room."""
        for k in range(len(self.chains)):
            while self.queue and not self.down_hops[k] and self.busy[k] < self.caps[k]:
                self.busy[k] += 1
                self.start(self.queue.popleft(), k, now)

    def wake_stalled(self, now: float) -> None:
        return None  # queued jobs wait in the queue; dispatch() restarts them

    def retry_after_change(self, r: int, now: float) -> None:
        return None


def simulate_central(
    pm: PerfModel,
    placement: Placement,
    workload: Workload,
    dispatcher: JffcDispatcher,
    allocation_delay_ms: float = 0.0,
    method: str | None = None,
    churn: ChurnSchedule | None = None,
    rejoin=None,
) -> SimResult:
    return CentralQueue(pm, placement, workload, dispatcher, allocation_delay_ms, churn).run(method or dispatcher.name)
