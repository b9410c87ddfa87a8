"""How the live client waits and serves a request, shared by the runtime client and the step-level prediction
(docs/runtime.md §4, §8.2).

The dispatch drivers (one per policy kind: book-and-wait, PETALS' retrying client, the JFFC queue) and
``serve_request`` are asyncio coroutines that take their decisions from the method's own policy object on a
``LiveSlots`` state. The runtime runs them against real server processes (runtime.client.ChainRunner); the
step-level prediction runs the very same code on a virtual-time loop against simulated servers
(sim.step_level.SimChainRunner), so the prediction and the measurement take the same decisions by
construction. A runner must offer ``run(rec, servers, processed, need)`` and ``forget(j)``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from swarmplan.perf.chains import shortest_chain
from swarmplan.perf.timing import backoff_ms
from swarmplan.sim.live_slots import LiveSlots


class HopFailed(Exception):
    def __init__(self, server: int, why: str):
        super().__init__(f"server {server}: {why}")
        self.server = server


class Refused(Exception):
    def __init__(self, server: int):
        super().__init__(f"server {server} is full")
        self.server = server


@dataclass
class RequestRecord:
    """What happened to one request (times in ms from the start of the run)."""

    request: int
    arrival_ms: float
    prompt: list[int]
    output_tokens: int
    start_ms: float = float("nan")  # the successful attempt's prefill starts
    first_token_ms: float = float("nan")
    done_ms: float = float("nan")
    tokens: list[int] = field(default_factory=list)
    chains: list[tuple[int, ...]] = field(default_factory=list)
    processed: list[tuple[int, ...]] = field(default_factory=list)
    failures: int = 0
    refusals: int = 0
    lost: bool = False
    server_cpu_ms: float = 0.0  # the servers' forwards' CPU time for this request, as they report it
    server_wall_ms: float = 0.0  # …and their wall time (> CPU time when the cores are shared)

    @property
    def response_ms(self) -> float:
        return self.done_ms - self.arrival_ms

    @property
    def ttft_ms(self) -> float:
        return self.first_token_ms - self.arrival_ms


# ---------------------------------------------------------------- dispatch drivers (one per policy kind)


class _Driver:
    """acquire() returns the chain a request may start on now (waiting as its policy says), or None if no live
    chain can serve it; done() and failed() report back."""

    def __init__(self, live: LiveSlots, predict, clock, timing):
        self.live, self.predict, self.clock, self.timing = live, predict, clock, timing

    def done(self, r: int, chain) -> None:
        self.live.unbook(r)

    def failed(self, r: int, chain) -> None:
        self.live.unbook(r)


def _live_chain(router, live: LiveSlots, client: int, l_in: int, l_out: int):
    """The policy's static best chain among live servers (a failed server is banned, as PETALS' client bans it):
    (servers, blocks, slots needed)."""
    g = router.graph
    dead = np.array([live.dead(j) for j in range(len(live.capacity))])
    w = np.where(dead[g.dst] | ~router.edge_fits, np.inf, router.static_weights(client, l_in, l_out))
    _, servers, processed = shortest_chain(g, w, router.sink_weights(client))
    units = router.units(l_in, l_out) if hasattr(router, "units") else 1
    return servers, processed, [k * units for k in processed]


class BookAndWait(_Driver):
    """The paper's model (docs/model.md §3.4, §9.3): route once with the policy, book the chain, and if it must
    wait, retry admission with PETALS' back-off (1, 3, 7, … s after arrival) until the chain has room."""

    def __init__(self, router, live, predict, clock, timing):
        super().__init__(live, predict, clock, timing)
        self.router = router

    async def acquire(self, r, client, l_in, l_out):
        now = self.clock()
        route = self.router.route(self.live, now, client, l_in, l_out)
        servers, processed, waits, need = route.servers, route.processed, route.waits_ms, route.need
        if not servers or any(self.live.dead(j) for j in servers) or max(waits) == float("inf"):
            servers, processed, need = _live_chain(self.router, self.live, client, l_in, l_out)
            if not servers:
                return None
            waits = [self.live.wait_ms(j, k, now) for j, k in zip(servers, need)]
        w = max(waits)
        b = backoff_ms(w, self.timing.backoff_first_ms, self.timing.backoff_max_ms) if w > 0 else 0.0
        self.live.book(r, servers, need, now + b + self.predict(client, l_in, l_out, servers, processed))
        step, t = self.timing.backoff_first_ms, now
        if w > 0:
            t, step = now + step, min(step * 2, self.timing.backoff_max_ms)
            await asyncio.sleep((t - self.clock()) / 1000)
        while not self.live.can_admit(servers, need):
            if any(self.live.dead(j) for j in servers):
                self.live.unbook(r)
                return await self.acquire(r, client, l_in, l_out)
            t, step = t + step, min(step * 2, self.timing.backoff_max_ms)
            await asyncio.sleep(max(0.0, t - self.clock()) / 1000)
        self.live.predict(r, self.clock() + self.predict(client, l_in, l_out, servers, processed))
        return servers, processed, need


class RetryRoute(_Driver):
    """PETALS' real client (docs/model.md §9.4): start only on a chain with room now, else retry after
    1, 2, 4, … s, routing afresh each time."""

    def __init__(self, retrying, live, predict, clock, timing):
        super().__init__(live, predict, clock, timing)
        self.router = retrying.router

    async def acquire(self, r, client, l_in, l_out):
        attempt = 0
        while True:
            now = self.clock()
            route = self.router.route(self.live, now, client, l_in, l_out)
            servers, processed, need = route.servers, route.processed, route.need
            if not servers or any(self.live.dead(j) for j in servers):
                servers, processed, need = _live_chain(self.router, self.live, client, l_in, l_out)
                if not servers:
                    return None
            failed = next((j for j, k in zip(servers, need) if self.live.free(j) < k or not self.live.can_admit([j], [k])), None)
            report = getattr(self.router, "attempt_result", None)  # PETALS' bans (docs/model.md §17.5)
            if report is not None:
                report(now, servers, failed)
            if failed is None:
                self.live.book(r, servers, need, now + self.predict(client, l_in, l_out, servers, processed))
                return servers, processed, need
            attempt += 1
            delay = min(self.timing.backoff_first_ms * 2 ** (attempt - 1), self.timing.backoff_max_ms)
            await asyncio.sleep(delay / 1000)


class CentralQueue(_Driver):
    """JFFC (docs/model.md §14.3): the fastest live chain with a free place, else a FCFS queue; a completion hands
    its chain to the head of the queue. A chain through a failed server is retired."""

    def __init__(self, dispatcher, live, predict, clock, timing):
        super().__init__(live, predict, clock, timing)
        self.chains = dispatcher.chains
        self.busy = [0] * len(self.chains)
        self.queue: deque = deque()
        self.chain_of: dict[int, int] = {}

    def _usable(self, k: int) -> bool:
        return not any(self.live.dead(j) for j in self.chains[k].servers)

    async def acquire(self, r, client, l_in, l_out, front: bool = False):
        for k, ch in enumerate(self.chains):
            if self.busy[k] < ch.capacity and self._usable(k):
                self.busy[k] += 1
                return self._start(r, k, client, l_in, l_out)
        if not any(self._usable(k) for k in range(len(self.chains))):
            return None
        fut = asyncio.get_running_loop().create_future()
        (self.queue.appendleft if front else self.queue.append)((r, fut))
        k = await fut
        if k is None:
            return None
        return self._start(r, k, client, l_in, l_out)

    def _start(self, r, k, client, l_in, l_out):
        ch = self.chains[k]
        self.chain_of[r] = k
        self.live.book(r, ch.servers, ch.blocks, self.clock() + self.predict(client, l_in, l_out, ch.servers, ch.blocks))
        return list(ch.servers), list(ch.blocks), list(ch.blocks)

    def _hand_over(self, k: int) -> None:
        if self.queue and self._usable(k):
            _, fut = self.queue.popleft()
            fut.set_result(k)
        else:
            self.busy[k] -= 1
            if not any(self._usable(i) for i in range(len(self.chains))):
                while self.queue:
                    self.queue.popleft()[1].set_result(None)

    def done(self, r, chain) -> None:
        super().done(r, chain)
        self._hand_over(self.chain_of.pop(r))

    def failed(self, r, chain) -> None:
        self.done(r, chain)


def make_driver(policy, live, predict, clock, timing) -> _Driver:
    from swarmplan.sim.central import JffcDispatcher
    from swarmplan.sim.retry import RetryingClient

    if isinstance(policy, JffcDispatcher):
        return CentralQueue(policy, live, predict, clock, timing)
    if isinstance(policy, RetryingClient):
        return RetryRoute(policy, live, predict, clock, timing)
    return BookAndWait(policy, live, predict, clock, timing)


async def serve_request(rec: RequestRecord, client: int, driver: _Driver, runner, clock) -> RequestRecord:
    """One request from arrival to its last token, across refusals and failures."""
    delay = rec.arrival_ms - clock()
    if delay > 0:
        await asyncio.sleep(delay / 1000)
    front = False
    while len(rec.tokens) < rec.output_tokens:
        l_in = len(rec.prompt) + len(rec.tokens)
        l_out = rec.output_tokens - len(rec.tokens)
        if isinstance(driver, CentralQueue):
            chain = await driver.acquire(rec.request, client, l_in, l_out, front)
        else:
            chain = await driver.acquire(rec.request, client, l_in, l_out)
        if chain is None:
            rec.lost = True
            return rec
        servers, processed, need = chain
        if np.isnan(rec.start_ms):
            rec.start_ms = clock()
        rec.chains.append(tuple(servers))
        rec.processed.append(tuple(processed))
        try:
            await runner.run(rec, servers, processed, need)
            driver.done(rec.request, chain)
        except Refused:
            rec.refusals += 1
            driver.failed(rec.request, chain)
            await asyncio.sleep(driver.timing.backoff_first_ms / 1000)
        except HopFailed as exc:
            rec.failures += 1
            if driver.live.dead(exc.server):
                runner.forget(exc.server)
            driver.failed(rec.request, chain)
            front = True
    rec.done_ms = clock()
    return rec
