"""The runtime client: routes each request with the method's own policy object on live slot state, runs
prefill then greedy decode hub-and-spoke along the chain, and survives server failures (docs/runtime.md §4).

Hub-and-spoke, as PETALS' client and the paper's model (docs/model.md §1): for every token the client sends
the hidden state to each chain server in turn. A session is opened by its prefill message and released by
its last step (or a close), so no extra round trip is spent on set-up and the client learns of a release
exactly when the request completes. A hop whose server cannot be reached marks the server dead; the request
closes its other sessions, is routed again and replays its prompt and the tokens generated so far to the
new chain, as PETALS' client re-routes and replays its history (petals.md §7.4).
"""

from __future__ import annotations

import asyncio
import itertools

import numpy as np

from swarmplan.runtime.wire import Link, WireError, client_handshake, read_frame, send_frame
from swarmplan.sim.client_drivers import (  # noqa: F401  (re-exported: the drivers live in the sim layer)
    HopFailed,
    Refused,
    RequestRecord,
    make_driver,
    serve_request,
)
from swarmplan.sim.live_slots import LiveSlots


class Connections:
    """Authenticated connections to each server, reused across sessions (one session per connection at a time)."""

    def __init__(self, host: str, ports: dict[int, int], secret: bytes, peer: str):
        self.host, self.ports, self.secret, self.peer = host, dict(ports), secret, peer
        self.idle: dict[int, list] = {}

    async def get(self, j: int):
        pool = self.idle.setdefault(j, [])
        if pool:
            return pool.pop()
        port = self.ports.get(j)
        if port is None:
            raise HopFailed(j, "not running")
        try:
            reader, writer = await asyncio.open_connection(self.host, port)
            await client_handshake(reader, writer, self.secret, self.peer)
        except (OSError, WireError) as exc:
            raise HopFailed(j, str(exc)) from exc
        return reader, writer

    def put(self, j: int, conn) -> None:
        self.idle.setdefault(j, []).append(conn)

    def drop(self, j: int, conn=None) -> None:
        conns = ([conn] if conn else []) + (self.idle.pop(j, []) if conn is None else [])
        for _, writer in conns:
            writer.close()

    def server_back(self, j: int, port: int) -> None:
        self.drop(j)
        self.ports[j] = port

    def close(self) -> None:
        for j in list(self.idle):
            self.drop(j)


class ChainRunner:
    """Runs one request's tokens along one chain; keeps LiveSlots' ``running`` counts in step with the servers."""

    def __init__(self, head, conns: Connections, links: dict[int, Link], live: LiveSlots, span: list[int], clock):
        self.head, self.conns, self.links, self.live, self.span, self.clock = head, conns, links, live, span, clock
        self._ids = itertools.count()

    def forget(self, j: int) -> None:
        """Server j failed: drop its pooled connections."""
        self.conns.drop(j)

    async def _ask(self, j: int, conn, header: dict, x: np.ndarray | None, rec: RequestRecord | None = None):
        reader, writer = conn
        try:
            await send_frame(writer, self.links[j], header, x)
            reply, out = await read_frame(reader)
        except WireError as exc:
            self.live.set_dead(j)  # unreachable: banned until it returns, as PETALS' client bans it
            raise HopFailed(j, str(exc)) from exc
        if rec is not None:
            rec.server_cpu_ms += float(reply.get("cpu_ms", 0.0))
            rec.server_wall_ms += float(reply.get("compute_ms", 0.0))
        return reply, out

    async def run(self, rec: RequestRecord, servers, processed, need=None) -> None:
        """Generate the tokens ``rec`` still needs on this chain, appending to ``rec.tokens`` as they come.
        (Head's weights need no grad, so no grad-mode context has to span the awaits.)"""
        sid = f"{rec.request}.{next(self._ids)}"
        steps = rec.output_tokens - len(rec.tokens)
        need_slots = list(processed) if need is None else list(need)
        open_: list[tuple[int, int, object]] = []  # (server, slots, connection) holding a session
        try:
            x = self.head.embed_ids(rec.prompt + rec.tokens).float().cpu().numpy()
            for j, n, k in zip(servers, processed, need_slots):
                try:
                    conn = await self.conns.get(j)
                except HopFailed:
                    self.live.set_dead(j)
                    raise
                open_.append((j, k, conn))
                self.live.admitted(j, k)  # counted from the moment it is asked for, so no other request takes it
                reply, x = await self._ask(
                    j,
                    conn,
                    {"op": "prefill", "session": sid, "skip": self.span[j] - n, "n": n, "slots": k, "last": steps == 1},
                    x,
                    rec,
                )
                if not reply.get("ok"):
                    open_.pop()
                    self.live.released(j, k)
                    self.conns.put(j, conn)
                    if reply.get("error") == "full":
                        raise Refused(j)
                    raise HopFailed(j, str(reply.get("error")))
            for step in range(steps):
                tok = self.head.next_token(x)
                rec.tokens.append(tok)
                if step == 0 and np.isnan(rec.first_token_ms):
                    rec.first_token_ms = self.clock()
                if step == steps - 1:
                    break
                last = step == steps - 2
                x = self.head.embed_ids([tok]).float().cpu().numpy()
                for j, n, conn in open_:
                    reply, x = await self._ask(j, conn, {"op": "decode", "session": sid, "last": last}, x, rec)
                    if not reply.get("ok"):
                        raise HopFailed(j, str(reply.get("error")))
            # The last step (or a one-token prefill) released every session on its server.
            for j, n, conn in open_:
                self.live.released(j, n)
                self.conns.put(j, conn)
            open_ = []
        finally:
            await self._abandon(open_, sid)

    async def _abandon(self, open_, sid: str) -> None:
        """Close what a failed attempt still holds; a dead server's sessions died with it."""
        for j, n, conn in open_:
            if self.live.dead(j):
                self.live.released(j, n)
                self.conns.drop(j, conn)
                continue
            try:
                await self._ask(j, conn, {"op": "close", "session": sid}, None)
                self.conns.put(j, conn)
            except HopFailed:
                self.conns.drop(j, conn)
            self.live.released(j, n)  # after the server's reply: it has freed the slots by then
