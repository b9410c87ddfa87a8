"""A runtime server process: one contiguous span of blocks, a KV cache of exactly its slots (docs/runtime.md §2).

Started by ``runtime.launch`` from a fork server (the secret travels through a pipe, never on a command
line); it reports its port once the model is built. Every session
holds n slots (one per block it processes) from its prefill until its last step or close; a prefill that
would exceed the slots is refused, as a full PETALS server refuses. Forwards run one at a time on the
event loop, as a PETALS server's pool runs one task at a time.

Messages (header + raw tensor, runtime.wire): ``prefill`` {session, skip, n, slots?, last?} + hidden [1, T, h];
``decode`` {session, last?} + hidden [1, 1, h]; ``close`` {session}; ``ping``. Replies carry ``ok``,
``free`` (slots left), ``compute_ms`` (the forward's own wall time) and ``cpu_ms`` (its CPU time: one core's
work, independent of how many processes share the cores; used by calibration, docs/runtime.md §8.4).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import time
from dataclasses import dataclass

import numpy as np
import torch  # imported once in the fork server, so forked servers start at once
import transformers.models.llama.modeling_llama  # noqa: F401

from swarmplan.runtime.wire import Link, WireError, read_frame, run_precise, send_frame, server_challenge


@dataclass
class Session:
    skip: int
    n: int  # blocks it runs here
    slots: int  # slots it holds: n, or n × units under PETALS' max-length reservation (docs/model.md §17.3)
    cache: object
    pos: int = 0


class SlotLedger:
    """The server's slot count: admits a session of n blocks only while used + n ≤ slots."""

    def __init__(self, slots: int):
        self.slots, self.used, self.peak = int(slots), 0, 0

    def admit(self, n: int) -> bool:
        if self.used + n > self.slots:
            return False
        self.used += n
        self.peak = max(self.peak, self.used)
        return True

    def release(self, n: int) -> None:
        self.used -= n

    @property
    def free(self) -> int:
        return self.slots - self.used


class StageServer:
    def __init__(self, cfg: dict):
        from swarmplan.runtime.model import LlamaArch, Stage, new_cache

        torch.set_num_threads(int(cfg.get("threads", 1)))
        self.new_cache = new_cache
        self.device = cfg.get("device", "cpu")
        self.stage = Stage(LlamaArch(**cfg["arch"]), int(cfg["first_block"]), int(cfg["n_blocks"]), self.device)
        self.ledger = SlotLedger(cfg["slots"])
        self.sessions: dict[str, Session] = {}
        self.secret = bytes.fromhex(cfg["secret"])
        self.links = {peer: Link(*v) for peer, v in cfg.get("links", {}).items()}

    def _forward(self, s: Session, hidden: np.ndarray):
        x = torch.from_numpy(np.array(hidden, dtype=np.float32)).to(self.device)
        t0, c0 = time.perf_counter(), time.thread_time()
        out = self.stage.forward(x, s.cache, s.pos, s.skip)
        out = out.float().cpu().numpy()  # .cpu() waits for the device, so compute_ms is the real forward time
        s.pos += x.shape[1]
        return out, (time.perf_counter() - t0) * 1000.0, (time.thread_time() - c0) * 1000.0

    def _end(self, sid: str) -> None:
        s = self.sessions.pop(sid, None)
        if s is not None:
            self.ledger.release(s.slots)

    async def handle(self, reader, writer) -> None:
        mine: set[str] = set()
        try:
            peer = await server_challenge(reader, writer, self.secret)
            link = self.links.get(peer, Link())
            while True:
                header, arr = await read_frame(reader)
                reply, out = self._dispatch(header, arr, mine)
                await send_frame(writer, link, reply, out)
        except WireError:
            pass
        finally:
            for sid in mine:
                self._end(sid)
            writer.close()

    def _dispatch(self, header: dict, arr, mine: set[str]):
        op, sid = header.get("op"), str(header.get("session", ""))
        if op == "ping":
            # process_cpu_ms: this process's CPU time so far (calibration divides its growth over many pings
            # by their count: the per-message cost of transport and dispatch, docs/runtime.md §8.4)
            reply = {"ok": True, "free": self.ledger.free, "peak": self.ledger.peak, "compute_ms": 0.0}
            return reply | {"process_cpu_ms": time.process_time() * 1000.0}, arr
        if op == "close":
            self._end(sid)
            mine.discard(sid)
            return {"ok": True, "free": self.ledger.free}, None
        if op == "prefill":
            n, skip = int(header["n"]), int(header["skip"])
            slots = int(header.get("slots", n))
            if sid in self.sessions or skip < 0 or n < 1 or skip + n != self.stage.n_blocks or arr is None or slots < n:
                return {"ok": False, "error": "bad prefill", "free": self.ledger.free}, None
            if not self.ledger.admit(slots):
                return {"ok": False, "error": "full", "free": self.ledger.free}, None
            self.sessions[sid] = Session(skip, n, slots, self.new_cache())
            mine.add(sid)
        elif op != "decode" or sid not in self.sessions or arr is None:
            return {"ok": False, "error": f"bad request {op!r}", "free": self.ledger.free}, None
        out, ms, cpu_ms = self._forward(self.sessions[sid], arr)
        if header.get("last"):
            self._end(sid)
            mine.discard(sid)
        return {"ok": True, "free": self.ledger.free, "compute_ms": ms, "cpu_ms": cpu_ms}, out

    async def serve(self, sock) -> None:
        server = await asyncio.start_server(self.handle, sock=sock)
        async with server:
            await server.serve_forever()


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL when our parent (the fork server, which exits with the launcher) dies,
    so no server outlives the run, even when the launcher itself is SIGKILLed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def process_main(cfg: dict, conn) -> None:
    """Entry point of a server process (forked from runtime.launch's fork server, which has torch and
    transformers imported already). Reports ("ready", port) or ("error", message) on ``conn``."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the launcher stops us
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    host, port = cfg.get("host", "127.0.0.1"), int(cfg.get("port", 0))
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, port))  # before loading the model: a taken port fails at once
        sock.listen(128)
        server = StageServer(cfg)
    except OSError as exc:
        conn.send(("error", f"cannot listen on {host}:{port}: {exc.strerror or exc}"))
        os._exit(3)
    except Exception as exc:  # noqa: BLE001 — any start-up failure is one line for the launcher
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        os._exit(4)
    conn.send(("ready", sock.getsockname()[1]))
    conn.close()
    # connections: a few pooled per peer plus one per session it can hold
    run_precise(server.serve(sock), descriptors=int(cfg["slots"]) + 8 * (len(cfg.get("links", {})) + 1))
