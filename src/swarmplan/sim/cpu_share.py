"""Processor sharing of a host's CPU cores among single-threaded processes (docs/runtime.md §8.3).

Each process of the swarm (a server, the client) is one thread with a FIFO of CPU work: it computes one item
at a time, in order. While b of the swarm's processes are busy, each runs at the rate ``fair_rate`` gives
them: the kernel's fair scheduler shares the C cores among scheduling entities by water-filling, each capped
by its demand. With autogroup on (Linux's default for sessions), the entities are sessions: the swarm (one
session) gets its water-filled share and splits it among its b busy threads, each at most one core. Other
sessions' demands over time (runnable threads, sampled during the live run; runtime.host_load) come in as a
piecewise-constant ``Background``.

``CpuShare`` runs this on an asyncio loop (the virtual-time loop of sim.virtual_time): ``await
share.compute(proc, work_ms)`` returns when ``work_ms`` of one core's time have been done for ``proc``.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from dataclasses import dataclass, field


def nice_weight(nice: float) -> float:
    """docs/runtime.md §8.3 (Eq. 8.6) — the fair scheduler's weight of a scheduling entity of this nice value:
    1024 / 1.25^nice (Linux, kernel/sched/core.c ``sched_prio_to_weight``, which tabulates this rounded: each
    nice step is ~10 % of CPU). Worked: nice 0 → 1024, nice 19 → 1024 / 1.25^19 ≈ 14.8 (the table's 15)."""
    return 1024.0 / 1.25 ** float(nice)


def water_fill(capacity: float, demands, weights=None) -> list[float]:
    """docs/runtime.md §8.3 (Eq. 8.1) — weighted max-min fair allocation of ``capacity`` among entities with
    these demands: each gets min(demand, λ·weight), with λ the level at which the allocations sum to the
    capacity (or every demand is met). Equal weights when none are given. Worked: 2 cores, demands [3, 0.5] →
    [1.5, 0.5]; demands [1, 2] → [1, 1]; demands [2, 2] with weights [1024, 14.76] → [1.972, 0.028]."""
    demands = [max(0.0, float(d)) for d in demands]
    weights = [1.0] * len(demands) if weights is None else [max(1e-12, float(w)) for w in weights]
    alloc = [0.0] * len(demands)
    left, total_w = float(capacity), sum(weights)
    for i in sorted(range(len(demands)), key=lambda i: demands[i] / weights[i]):
        alloc[i] = min(demands[i], left * weights[i] / total_w)
        left -= alloc[i]
        total_w -= weights[i]
    return alloc


def fair_rate(cores: float, busy: int, others=(), grouped: bool = True, weights=None, own_weight: float = 1024.0) -> float:
    """docs/runtime.md §8.3 (Eq. 8.2) — speed (fraction of one core) of each of the swarm's ``busy`` threads.
    grouped (autogroup): the swarm is one entity of demand ``busy``; ``others`` are other sessions' runnable
    counts. Not grouped: every thread is an entity of demand 1 and ``others`` counts other runnable threads.
    ``weights``: the other sessions' scheduling weights (Eq. 8.6; default: the swarm's own, ``own_weight``).
    Worked: 2 cores, 3 busy, nothing else → 2/3; 2 cores, 3 busy, another session with 2 runnable → 1/3; the
    same session at nice 19 (weight 14.4) → 0.658."""
    if busy <= 0:
        return 1.0
    if grouped:
        w = None if weights is None else [own_weight, *weights]
        ours = water_fill(cores, [busy, *others], w)[0]
        return min(1.0, ours / busy)
    return min(1.0, cores / (busy + float(sum(others))))


@dataclass
class Background:
    """Other sessions' runnable threads over time: from ``times_ms[i]`` on, ``demands[i]`` (a list per
    interval, one entry per other session) and, when known, ``weights[i]`` (their scheduling weights, Eq. 8.6;
    none: every session weighs as much as the swarm's ``own_weight``). Empty: a quiet host."""

    times_ms: list[float] = field(default_factory=list)
    demands: list[tuple[float, ...]] = field(default_factory=list)
    weights: list[tuple[float, ...]] | None = None
    own_weight: float = 1024.0

    # Instants within EPS_MS count as equal: the loop's clock (seconds) and these ms differ by rounding.
    EPS_MS = 1e-6

    def _interval(self, t_ms: float) -> int:
        """The interval ``t_ms`` falls in (−1: before the first)."""
        return bisect.bisect_right(self.times_ms, t_ms + self.EPS_MS) - 1

    def at(self, t_ms: float) -> tuple[float, ...]:
        i = self._interval(t_ms)
        return self.demands[i] if i >= 0 else ()

    def weights_at(self, t_ms: float) -> tuple[float, ...] | None:
        if self.weights is None:
            return None
        i = self._interval(t_ms)
        return self.weights[i] if i >= 0 else ()

    def next_change(self, t_ms: float) -> float | None:
        i = bisect.bisect_right(self.times_ms, t_ms + self.EPS_MS)
        return self.times_ms[i] if i < len(self.times_ms) else None


class CpuShare:
    """Event-driven processor sharing on the running asyncio loop (times in ms of ``loop.time()``)."""

    def __init__(self, cores: float, background: Background | None = None, grouped: bool = True):
        self.cores, self.background, self.grouped = cores, background or Background(), grouped
        self.queues: dict[str, deque] = {}  # proc → deque of [remaining_ms, future]
        self._last = None
        self._timer = None
        self.busy_ms: dict[str, float] = {}  # one core's time done per process (for checks)

    def _now(self) -> float:
        return asyncio.get_running_loop().time() * 1000.0

    def rate(self, now_ms: float) -> float:
        busy = sum(1 for q in self.queues.values() if q)
        bg = self.background
        return fair_rate(self.cores, busy, bg.at(now_ms), self.grouped, bg.weights_at(now_ms), bg.own_weight)

    def _advance(self, now: float) -> None:
        if self._last is not None and now > self._last:
            r, dt = self.rate(self._last), now - self._last  # constant in between: every change is an event
            for proc, q in self.queues.items():
                if q:
                    q[0][0] -= dt * r
                    self.busy_ms[proc] = self.busy_ms.get(proc, 0.0) + dt * r
        self._last = now

    def _settle(self) -> None:
        now = self._now()
        self._advance(now)
        for q in self.queues.values():
            while q and q[0][0] <= 1e-9:
                _, fut = q.popleft()
                if not fut.done():
                    fut.set_result(now)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        heads = [q[0][0] for q in self.queues.values() if q]
        if not heads:
            return
        due = now + min(heads) / self.rate(now)
        change = self.background.next_change(now)
        if change is not None and change < due:
            due = change
        self._timer = asyncio.get_running_loop().call_at(max(due, now) / 1000.0, self._settle)

    async def compute(self, proc: str, work_ms: float) -> float:
        """Queue ``work_ms`` (one core's time) on ``proc``'s FIFO; returns the instant (ms) it is done."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._advance(self._now())
        self.queues.setdefault(proc, deque()).append([max(0.0, float(work_ms)), fut])
        self._settle()
        return await fut

    def drop(self, proc: str) -> None:
        """``proc`` died: its queued work is gone (its waiters are cancelled)."""
        self._advance(self._now())
        for _, fut in self.queues.pop(proc, ()):
            fut.cancel()
        self._settle()
