"""Central-queue dispatch: JFFC, join-the-fastest-free-chain (docs/model.md §14.3; Sun, He, Hou 2026, Alg. 3).

An orchestrator holds a FCFS queue. An arrival starts on the fastest chain with a free place (fewer than
c_k jobs), else joins the queue; when a job completes, the head of the queue starts on that chain at once.
A job holds its chain place (and so its KV slots) from its start until it completes. With the
workload's exponential service option each job's service time is exponential with the chain's mean (the
assumption of Theorem 4), which a test uses to check the bounds.
"""

from __future__ import annotations

import heapq
from collections import deque
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain
from swarmplan.scenario.workload import Workload
from swarmplan.sim.recording import RunRecorder
from swarmplan.sim.result import SimResult


class JffcDispatcher:
    name = "jffc"

    def __init__(self, chains: list[Chain]):
        if not chains:
            raise ValueError("JFFC needs at least one chain")
        self.chains = sorted(chains, key=lambda ch: ch.service_ms)  # fastest first (stable)


def simulate_central(pm: PerfModel, placement: Placement, workload: Workload, dispatcher: JffcDispatcher,
                     allocation_delay_ms: float = 0.0, method: str | None = None) -> SimResult:
    chains = dispatcher.chains
    caps = [ch.capacity for ch in chains]
    busy = [0] * len(chains)
    rec = RunRecorder(pm, workload, allocation_delay_ms)
    heap: list[tuple[float, int, int]] = []  # (completion, request, chain)
    queue: deque[int] = deque()
    max_conc = 0

    def start(r: int, k: int, now: float) -> None:
        completion = rec.serve(r, chains[k].servers, chains[k].blocks, now - rec.arrival[r])
        heapq.heappush(heap, (completion, r, k))

    def complete_until(t: float) -> None:
        while heap and heap[0][0] <= t:
            done, _, k = heapq.heappop(heap)
            if queue:
                start(queue.popleft(), k, done)
            else:
                busy[k] -= 1

    for r in range(workload.n):
        now = rec.arrival[r]
        complete_until(now)
        max_conc = max(max_conc, len(heap) + len(queue) + 1)
        for k in range(len(chains)):
            if busy[k] < caps[k]:
                busy[k] += 1
                start(r, k, now)
                break
        else:
            queue.append(r)
    complete_until(float("inf"))
    return rec.result(method or dispatcher.name, placement, max_conc)
