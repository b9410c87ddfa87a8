"""Step-level prediction of a runtime swarm on one host (docs/runtime.md §8).

The paper's model (sim.engine and friends) says a session's speed does not depend on load. On one machine
that is false: every server process computes one message at a time, and all processes share the host's cores.
This module predicts what the runtime (swarmplan.runtime) does at the level of single hops:

* the **client's own code** decides: ``sim.client_drivers`` (the same drivers, the same policy object, the same
  ``LiveSlots``) runs on a virtual-time asyncio loop (``sim.virtual_time``), so routing, booking, back-off and
  the JFFC queue take exactly the live client's decisions, now computed against simulated servers;
* every **hop** (``SimChainRunner._hop``, docs/runtime.md §8.1): the client's CPU for the message, the
  sender's emulated link delay (the transport's own ``Link`` objects) plus the timer's lateness, the server's
  **FIFO worker** (one message at a time, admission decided when the message's turn comes, as the server's
  single-threaded event loop does), the reply's link delay, and the client's CPU to read it;
* the **client's per-token work** (LM head and sampling, then the next token's embedding) on the client's own
  single thread;
* all CPU work (servers' forwards and message handling, the client's) runs under **processor sharing** of
  the host's cores with the other sessions' measured demand (``sim.cpu_share``).

Costs are one core's CPU time, fitted by ``swarmplan calibrate`` (docs/runtime.md §8.4). Default off:
``swarmplan validate`` asks for it on a CPU host; nothing else uses it, so every existing result is unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from swarmplan.sim.client_drivers import HopFailed, Refused, RequestRecord, make_driver, serve_request
from swarmplan.sim.cpu_share import Background, CpuShare
from swarmplan.sim.live_slots import LiveSlots
from swarmplan.sim.virtual_time import run_virtual

CLIENT = "client"
HEADER_BYTES = 128  # a frame's length prefix and JSON header, about (only matters with a bandwidth limit)


@dataclass(frozen=True)
class HopCosts:
    """A hop's transport costs on one link (docs/runtime.md §8.4): o_s and o_c (one core's CPU time per message)
    and δ, how late each of its two delayed frames' timers fire. They depend on the link's delay on a real host."""

    server_message_ms: float
    client_message_ms: float
    wake_ms: float


@dataclass(frozen=True)
class StepCosts:
    """One core's CPU time (ms) of each piece of work (docs/runtime.md §8.4), and the host."""

    decode_call_ms: float  # c: per decode forward call
    decode_block_ms: float  # τ: per block per decode step
    prefill_call_ms: float  # α: per prefill call
    prefill_call_token_ms: float  # β: per prefill call per input token
    prefill_block_ms: float  # b: per block per prefill
    prefill_block_token_ms: float  # a: per block per input token
    server_message_ms: float  # o_s: a server reading, dispatching and answering one message
    client_message_ms: float  # o_c: the client sending one message and reading its reply
    client_head_ms: float  # h: final norm, LM head and greedy choice of one token
    client_embed_ms: float  # e: embedding the next token
    wake_ms: float = 0.0  # δ: how late an emulated link's timer fires (not CPU), per delayed frame
    cores: float = 1.0  # C
    grouped: bool = True  # the kernel shares cores among sessions first (autogroup)
    # Per link RTT (ms, rounded to a microsecond): that link's measured hop costs, in place of the three
    # scalars above (runtime.link_costs); links not in it use the scalars.
    hops: dict = field(default_factory=dict)

    def hop(self, rtt_ms: float) -> HopCosts:
        """The hop costs of a link of this RTT: measured on it when ``hops`` has it, else the calibration's."""
        found = self.hops.get(round(float(rtt_ms), 3))
        return found or HopCosts(self.server_message_ms, self.client_message_ms, self.wake_ms)

    def forwards_scaled(self, prefill: float, decode: float) -> "StepCosts":
        """These costs with Eq. 8.4's coefficients times ``prefill`` and Eq. 8.3's times ``decode``."""
        return replace(
            self,
            decode_call_ms=self.decode_call_ms * decode,
            decode_block_ms=self.decode_block_ms * decode,
            prefill_call_ms=self.prefill_call_ms * prefill,
            prefill_call_token_ms=self.prefill_call_token_ms * prefill,
            prefill_block_ms=self.prefill_block_ms * prefill,
            prefill_block_token_ms=self.prefill_block_token_ms * prefill,
        )

    def decode_ms(self, n: int) -> float:
        """docs/runtime.md Eq. 8.3 — work of one decode forward through n blocks: c + τ·n."""
        return self.decode_call_ms + self.decode_block_ms * n

    def prefill_ms(self, n: int, l_in: int) -> float:
        """docs/runtime.md Eq. 8.4 — work of a prefill of l tokens through n blocks: α + β·l + n·(b + a·l)."""
        return (
            self.prefill_call_ms
            + self.prefill_call_token_ms * l_in
            + n * (self.prefill_block_ms + self.prefill_block_token_ms * l_in)
        )


@dataclass(frozen=True)
class StepOutage:
    server: int
    fail_ms: float
    return_ms: float | None = None


class SimServer:
    """A server process: its slot count, sessions, FIFO worker (``lock``) and whether it is alive. Each life
    (start to kill) has its own ``death`` future; a connection opened to a life is that future, so it breaks
    when that life ends and stays broken after a restart, as a TCP connection to a killed process does."""

    def __init__(self, j: int, slots: int):
        self.j, self.slots = j, int(slots)
        self.proc = f"server:{j}"
        self._new_life()

    def _new_life(self) -> None:
        self.used = 0
        self.sessions: dict[str, int] = {}
        self.alive = True
        self.lock = asyncio.Lock()
        self.death = asyncio.get_running_loop().create_future()

    def kill(self, cpu: CpuShare) -> None:
        self.alive = False
        if not self.death.done():
            self.death.set_result(None)
        cpu.drop(self.proc)

    def restart(self) -> None:
        self._new_life()


class SimChainRunner:
    """The simulated twin of runtime.client.ChainRunner: the same message sequence, slot accounting on the
    same ``LiveSlots`` and the same exceptions; costs from ``StepCosts`` instead of real forwards."""

    def __init__(
        self,
        servers: dict,
        links: dict,
        live: LiveSlots,
        span: list[int],
        cpu: CpuShare,
        costs: StepCosts,
        hidden: int,
        clock,
        pool: int,
    ):
        self.servers, self.links, self.live, self.span = servers, links, live, span
        self.cpu, self.costs, self.hidden, self.clock = cpu, costs, hidden, clock
        self._ids = itertools.count()
        # Pooled connections per server (the live run warms up ``pool`` before the clock starts).
        self.idle = {j: [srv.death] * pool for j, srv in servers.items()}

    def forget(self, j: int) -> None:
        """Server j failed or came back: its pooled connections are gone (runtime.client.Connections.drop)."""
        self.idle[j] = []

    async def _connect(self, j: int):
        """runtime.client.Connections.get: a pooled connection costs nothing and does not suspend the request;
        a new one is a handshake (not delayed by the link) that needs the server's worker twice — accepting and
        sending the challenge, then checking the answer — and the client's CPU once (docs/runtime.md §8.1)."""
        if self.idle.get(j):
            return self.idle[j].pop()
        srv = self.servers.get(j)
        if srv is None or not srv.alive:
            self.live.set_dead(j)
            raise HopFailed(j, "connection refused")
        conn, c = srv.death, self._hop_costs(j)
        await self._at_server(j, conn, self._work(srv, c.server_message_ms))
        await self.cpu.compute(CLIENT, c.client_message_ms)
        await self._at_server(j, conn, self._work(srv, c.server_message_ms))
        return conn

    def _put(self, j: int, conn) -> None:
        self.idle.setdefault(j, []).append(conn)

    def _delay_s(self, j: int, tokens: int) -> float:
        """docs/runtime.md Eq. 8.5 — a frame's emulated delay (the transport's Link) plus the timer's lateness."""
        d = self.links[j].delay_s(HEADER_BYTES + 4 * self.hidden * tokens) if tokens >= 0 else self.links[j].delay_s(HEADER_BYTES)
        return d + self._hop_costs(j).wake_ms / 1000.0 if d > 0 else 0.0

    def _hop_costs(self, j: int) -> HopCosts:
        return self.costs.hop(self.links[j].rtt_ms)

    async def _at_server(self, j: int, conn, work):
        """Run ``work`` (the server's side of an exchange) on the life ``conn`` was opened to. If that life has
        ended or ends first, nothing comes back: the client sees its connection reset at that instant, marks
        the server dead (runtime.client.ChainRunner._ask on a WireError) and raises HopFailed."""
        if conn.done():
            work.close()
        else:
            task = asyncio.ensure_future(work)
            await asyncio.wait({task, conn}, return_when=asyncio.FIRST_COMPLETED)
            if task.done() and not task.cancelled():
                return task.result()
            task.cancel()
        self.live.set_dead(j)
        raise HopFailed(j, "connection reset")

    async def _work(self, srv: SimServer, work_ms: float) -> None:
        async with srv.lock:
            await self.cpu.compute(srv.proc, work_ms)

    async def _serve(self, srv: SimServer, op: str, sid: str, n: int, l_in: int, slots: int, last: bool):
        """The server's side of one message: wait for its worker, decide, compute, then send the answer after
        the link's delay (the server's own send, so a kill before it leaves loses it). Returns (ok, error, the
        forward's CPU ms, its wall ms), the times as the server's reply reports them."""
        c, o_s = self.costs, self._hop_costs(srv.j).server_message_ms
        async with srv.lock:
            ok, error, work = True, "", o_s
            if op == "prefill":
                if srv.used + slots > srv.slots:
                    ok, error = False, "full"
                else:
                    srv.used += slots
                    srv.sessions[sid] = slots
                    work += c.prefill_ms(n, l_in)
            elif op == "decode":
                work += c.decode_ms(n)
            else:  # close
                srv.used -= srv.sessions.pop(sid, 0)
            t0 = self.clock()
            await self.cpu.compute(srv.proc, work)
            wall_ms = self.clock() - t0
            if ok and last and op != "close":
                srv.used -= srv.sessions.pop(sid, 0)
        reply_tokens = (l_in if op == "prefill" else 1) if ok and op != "close" else -1
        if await self._delayed(srv.j, reply_tokens):
            await self._work(srv, 0.0)  # the reply's timer fires on the server's loop, free only between forwards (Eq. 8.7)
        return (ok, error, work - o_s, wall_ms) if ok else (ok, error, 0.0, 0.0)

    async def _hop(self, j: int, conn, op: str, sid: str, n=0, l_in=0, slots=0, last=False, rec=None):
        """docs/runtime.md §8.1 — one message on connection ``conn`` and its reply, timed the way the transport
        times it."""
        c = self._hop_costs(j)
        tokens = l_in if op == "prefill" else (1 if op == "decode" else -1)
        await self.cpu.compute(CLIENT, c.client_message_ms / 2)
        if await self._delayed(j, tokens):
            await self.cpu.compute(CLIENT, 0.0)  # the delay's timer fires on the client's loop (Eq. 8.7)
        work = self._serve(self.servers[j], op, sid, n, l_in, slots, last)
        ok, error, cpu_ms, wall_ms = await self._at_server(j, conn, work)
        if rec is not None:
            rec.server_cpu_ms += cpu_ms
            rec.server_wall_ms += wall_ms
        await self.cpu.compute(CLIENT, c.client_message_ms / 2)
        return ok, error

    async def _delayed(self, j: int, tokens: int) -> bool:
        """Sleep a frame's delay (Eq. 8.5); True when there was one — then a timer, not the sender's code,
        releases the frame, and the frame leaves only once the sender's event loop runs that timer."""
        d = self._delay_s(j, tokens)
        if d <= 0:
            return False
        await asyncio.sleep(d)
        return True

    async def run(self, rec: RequestRecord, servers, processed, need=None) -> None:
        """runtime.client.ChainRunner.run, message for message (tokens are placeholders: only timing matters)."""
        sid = f"{rec.request}.{next(self._ids)}"
        steps = rec.output_tokens - len(rec.tokens)
        l_in = len(rec.prompt) + len(rec.tokens)
        need_slots = list(processed) if need is None else list(need)
        open_: list[tuple[int, int, object]] = []  # (server, slots, connection) holding a session
        c = self.costs
        try:
            await self.cpu.compute(CLIENT, c.client_embed_ms)
            for j, n, k in zip(servers, processed, need_slots):
                conn = await self._connect(j)
                open_.append((j, k, conn))
                self.live.admitted(j, k)
                ok, error = await self._hop(j, conn, "prefill", sid, n, l_in, k, steps == 1, rec)
                if not ok:
                    open_.pop()
                    self.live.released(j, k)
                    self._put(j, conn)
                    if error == "full":
                        raise Refused(j)
                    raise HopFailed(j, error)
            for step in range(steps):
                await self.cpu.compute(CLIENT, c.client_head_ms)
                rec.tokens.append(-1)
                if step == 0 and np.isnan(rec.first_token_ms):
                    rec.first_token_ms = self.clock()
                if step == steps - 1:
                    break
                last = step == steps - 2
                await self.cpu.compute(CLIENT, c.client_embed_ms)
                for (j, _, conn), n in zip(open_, processed):
                    ok, error = await self._hop(j, conn, "decode", sid, n, last=last, rec=rec)
                    if not ok:
                        raise HopFailed(j, error)
            for j, k, conn in open_:
                self.live.released(j, k)
                self._put(j, conn)
            open_ = []
        finally:
            await self._abandon(open_, sid)

    async def _abandon(self, open_, sid: str) -> None:
        for j, k, conn in open_:
            if not self.live.dead(j):
                try:
                    await self._hop(j, conn, "close", sid)
                    self._put(j, conn)
                except HopFailed:
                    pass
            self.live.released(j, k)


def simulate_steps(
    workload,
    prompts: list[list[int]],
    policy,
    predict,
    timing,
    capacity,
    span,
    links: dict[int, dict[int, object]],
    costs: StepCosts,
    hidden: int,
    background: Background | None = None,
    outages: list[StepOutage] = (),
    pool: int = 4,
) -> list[RequestRecord]:
    """Predict every request's record (arrival, start, first token, done, chains) at step level.

    ``links[c][j]`` is the transport's link object between client c and server j (``delay_s(nbytes)``);
    ``predict`` and ``timing`` are what the live client's drivers use for bookings and back-off."""

    async def main():
        loop = asyncio.get_running_loop()

        def clock() -> float:
            return loop.time() * 1000.0

        live = LiveSlots(capacity)
        servers = {}
        for j, m in enumerate(span):
            if m > 0:
                servers[j] = SimServer(j, capacity[j])
            else:
                live.set_dead(j)
        cpu = CpuShare(costs.cores, background, costs.grouped)
        runners = {c: SimChainRunner(servers, links[c], live, list(span), cpu, costs, hidden, clock, pool) for c in links}
        driver = make_driver(policy, live, predict, clock, timing)
        churn = asyncio.ensure_future(_churn(list(outages), servers, live, cpu, clock, runners))
        arrival, l_out, client = workload.arrival_ms.tolist(), workload.output_tokens.tolist(), workload.client.tolist()
        recs = [RequestRecord(r, arrival[r], list(prompts[r]), int(l_out[r])) for r in range(workload.n)]
        try:
            await asyncio.gather(
                *(serve_request(recs[r], client[r], driver, runners[client[r]], clock) for r in range(workload.n))
            )
        finally:
            churn.cancel()
        return recs

    return run_virtual(main())


async def _churn(outages, servers, live, cpu, clock, runners) -> None:
    """The live run's failure schedule (runtime.live_run._churn): kill at fail_ms, back at return_ms."""
    events = sorted(
        [(o.fail_ms, 0, o.server) for o in outages] + [(o.return_ms, 1, o.server) for o in outages if o.return_ms is not None]
    )
    for at, back, j in events:
        await asyncio.sleep(max(0.0, at - clock()) / 1000)
        if j not in servers:
            continue
        if back:
            servers[j].restart()
            for runner in runners.values():
                runner.forget(j)  # Connections.server_back: the old pool is dropped
            live.set_alive(j)
        else:
            servers[j].kill(cpu)
