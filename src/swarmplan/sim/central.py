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

from bisect import bisect_right
from collections import deque
from heapq import heappush

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain
from swarmplan.routing.slopack import reserved_chains
from swarmplan.scenario.workload import Workload
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.core import COMPLETE
from swarmplan.sim.result import SimResult
from swarmplan.sim.swarm_handler import SwarmHandler


class JffcDispatcher:
    """The chains, fastest first, and an optional SLO-aware ``rule`` (an object with ``kind`` —
    "per_token" or "response" — and ``limit_ms``; routing.slopack.DispatchRule): with it the queue decides
    per request from its lengths (SloAwareQueue, docs/capacity.md §5.4); without it, plain JFFC."""

    name = "jffc"

    def __init__(self, chains: list[Chain], rule=None):
        if not chains:
            raise ValueError("JFFC needs at least one chain")
        self.chains = sorted(chains, key=lambda ch: ch.service_ms)  # fastest first (stable)
        self.rule = rule


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


class SloAwareQueue(CentralQueue):
    """A central queue that knows each request's lengths at arrival (docs/capacity.md §5.4).

    Every request's service time alone on every chain, T_rk (docs/model.md §3.3), is known from its lengths.

    * Mean per-token SLO: a request starts at once on the fastest free chain (as JFFC: under this SLO a wait
      W costs W/l_out, which short outputs cannot afford). Queued requests are ordered by the cμ index
      1/(l_out · T_r,fastest) (Cox & Smith 1961: the order minimising a weighted mean wait, here weight
      1/l_out); a place on the fastest live chain goes to the head, a place on a slower chain k to the queued
      request whose per-token time it raises least, (T_rk − min_{f faster} T_rf)/l_out. With the rule's
      ``long_output_limit`` θ (§5.5) a request of more than θ output tokens never starts on a reserved chain
      (routing.slopack.reserved_chains) while another chain is live: it takes a free place elsewhere or waits.
    * Response-time quantile SLO: FCFS; a request starts on a chain only if it still meets the limit there
      (waited + d + T_rk ≤ limit): the slowest free chain that meets it (best fit, keeping fast chains for
      requests that need them). A request that can no longer meet the limit on any chain is a miss whatever
      happens: it takes the slowest free place, in FCFS order with the others (never starved: the system
      must serve every request, as the bound's Σ λ_p = Λ does). One that meets the limit only on a busy
      chain waits for it.
    """

    def __init__(self, pm, placement, workload, dispatcher: JffcDispatcher, allocation_delay_ms=0.0, churn=None):
        super().__init__(pm, placement, workload, dispatcher, allocation_delay_ms, churn)
        self.rule = dispatcher.rule
        rec, K = self.rec, len(self.chains)
        self.T = service_matrix_ms(rec, self.chains)
        self.T_min = self.T.min(axis=1)
        self.l_out = np.asarray(rec.output_tokens, dtype=float)
        faster = np.full_like(self.T, np.inf)  # min over the chains before k (nominally faster) of T_rf
        if K > 1:
            faster[:, 1:] = np.minimum.accumulate(self.T, axis=1)[:, :-1]
        self.penalty = (self.T - faster) / self.l_out[:, None]  # −inf on the fastest chain
        self.key = (-1.0 / (self.l_out * self.T_min)).tolist()
        self.queue: list[int] = []  # type: ignore[assignment]  # a list in priority (or FCFS) order
        self.keys: list[tuple[float, int]] = []
        self.arrival = np.asarray(rec.arrival)
        self.per_token = self.rule.kind == "per_token"
        self.limit = float(self.rule.limit_ms) - rec.delay
        theta = self.rule.long_output_limit if self.per_token else None
        if isinstance(theta, str):
            raise ValueError(f"long_output_limit {theta!r} must be resolved first (sim.long_outputs.resolve_rule)")
        self.reserved = reserved_chains(self.chains) if theta is not None else [False] * K
        self.long = self.l_out > (theta if theta is not None else np.inf)
        self._rates()

    def _rates(self) -> None:
        """ν_k = Σ over live chains faster than k of c_f/T_f (jobs per ms when full); 0: k is the fastest live.
        Also whether a chain outside the reserved ones is live (else long outputs may use reserved ones)."""
        nu, acc = [], 0.0
        for k, ch in enumerate(self.chains):
            nu.append(acc)
            if not self.down_hops[k]:
                acc += ch.capacity / ch.service_ms
        self.nu = nu
        self.elsewhere = any(not r and not down for r, down in zip(self.reserved, self.down_hops))

    def enqueue(self, r: int, front: bool = False) -> None:
        if self.churn is not None and not any(d == 0 for d in self.down_hops):
            self.rec.stalled.add(r)
        key = (-np.inf if front else (self.key[r] if self.per_token else 0.0), r)
        i = bisect_right(self.keys, key) if not front else 0
        self.keys.insert(i, key)
        self.queue.insert(i, r)

    def on_arrival(self, r: int, now: float) -> None:
        self.in_system += 1
        if self.in_system > self.max_conc:
            self.max_conc = self.in_system
        self.enqueue(r)
        self.dispatch(now)

    def _pick(self, k: int, now: float) -> int | None:
        """Index in the queue of the request that takes a free place on chain k, or None."""
        q = np.fromiter(self.queue, dtype=np.int64, count=len(self.queue))
        if self.per_token:  # the fastest live chain: the head; a slower one: the least per-token penalty
            if self.reserved[k] and self.elsewhere:  # §5.5: long outputs keep off the reserved chains
                ok = np.flatnonzero(~self.long[q])
                if not len(ok):
                    return None
                return int(ok[0]) if self.nu[k] <= 0.0 else int(ok[np.argmin(self.penalty[q[ok], k])])
            return 0 if self.nu[k] <= 0.0 else int(np.argmin(self.penalty[q, k]))
        waited = now - self.arrival[q]
        ok = (waited + self.T[q, k] <= self.limit) | (waited + self.T_min[q] > self.limit)  # meets, or lost
        return int(np.argmax(ok)) if ok.any() else None

    def _fill(self, k: int, now: float) -> None:
        while self.queue and not self.down_hops[k] and self.busy[k] < self.caps[k]:
            i = self._pick(k, now)
            if i is None:
                return
            r = self.queue.pop(i)
            del self.keys[i]
            self.busy[k] += 1
            self.start(r, k, now)

    def on_complete(self, r: int, now: float, generation: int) -> None:
        if generation != self.gen[r]:
            return
        k = self.on_chain[r]
        self.on_chain[r] = -1
        self.busy[k] -= 1
        self.in_system -= 1
        if self.rec.track:
            self.rec.complete(r, now)
        if self.per_token:
            self._fill(k, now)  # the queue did not change: only chain k's place is new
        else:
            self.dispatch(now)  # waiting requests may have become misses that take any place

    def dispatch(self, now: float) -> None:
        """Offer every free place: fastest first (per-token SLO); slowest first under a quantile SLO, so that a
        request that meets the limit on a slow chain, or misses it anyway, leaves the fast places to others."""
        self._rates()
        order = range(len(self.chains)) if self.per_token else range(len(self.chains) - 1, -1, -1)
        for k in order:
            if not self.queue:
                return
            self._fill(k, now)


def service_matrix_ms(rec, chains: list[Chain]) -> np.ndarray:
    """T_rk: request r's service time alone on chain k at its lengths (docs/model.md §3.3: t_1 + (l_out − 1)
    t_tok), without the random factor of the exponential-service option (a dispatcher knows lengths only)."""
    timer = rec._timer
    T = np.empty((len(rec.arrival), len(chains)))
    rows: dict[tuple[int, int], np.ndarray] = {}
    for r, (c, l_in, l_out) in enumerate(zip(rec.client, rec.input_tokens, rec.output_tokens)):
        key = (c, l_in)
        parts = rows.get(key)
        if parts is None:
            parts = rows[key] = np.array([timer.times(c, l_in, ch.servers, ch.blocks) for ch in chains])
        T[r] = parts[:, 0] + (l_out - 1) * parts[:, 1]
    return T


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
    queue = CentralQueue if getattr(dispatcher, "rule", None) is None else SloAwareQueue
    return queue(pm, placement, workload, dispatcher, allocation_delay_ms, churn).run(method or dispatcher.name)
