"""A runtime server process: one contiguous span of blocks, a KV cache of exactly its slots (docs/runtime.md §2).

Started by ``runtime.launch`` as ``python -m swarmplan.runtime.server`` with its JSON config on stdin (the
shared secret never appears on a command line). It prints ``READY <port>`` once listening. Every session
holds n slots (one per block it processes) from its prefill until its last step or close; a prefill that
would exceed the slots is refused, as a full PETALS server refuses. Forwards run one at a time on the
event loop, as a PETALS server's pool runs one task at a time.

Messages (header + raw tensor, runtime.wire): ``prefill`` {session, skip, n, last?} + hidden [1, T, h];
``decode`` {session, last?} + hidden [1, 1, h]; ``close`` {session}; ``ping``. Replies carry ``ok``,
``free`` (slots left) and ``compute_ms`` (the forward's own time, used by calibration).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np

from swarmplan.runtime.wire import Link, WireError, read_frame, send_frame, server_challenge


@dataclass
class Session:
    skip: int
    n: int
    cache: object
    pos: int = 0


class SlotLedger:
    """The server's slot count: admits a session of n blocks only while used + n ≤ slots."""

    def __init__(self, slots: int):
        self.slots, self.used = int(slots), 0

    def admit(self, n: int) -> bool:
        if self.used + n > self.slots:
            return False
        self.used += n
        return True

    def release(self, n: int) -> None:
        self.used -= n

    @property
    def free(self) -> int:
        return self.slots - self.used


class StageServer:
    def __init__(self, cfg: dict):
        import torch

        from swarmplan.runtime.model import LlamaArch, Stage, new_cache

        torch.set_num_threads(int(cfg.get("threads", 1)))
        self.torch, self.new_cache = torch, new_cache
        self.device = cfg.get("device", "cpu")
        self.stage = Stage(LlamaArch(**cfg["arch"]), int(cfg["first_block"]), int(cfg["n_blocks"]), self.device)
        self.ledger = SlotLedger(cfg["slots"])
        self.sessions: dict[str, Session] = {}
        self.secret = bytes.fromhex(cfg["secret"])
        self.links = {peer: Link(*v) for peer, v in cfg.get("links", {}).items()}

    def _forward(self, s: Session, hidden: np.ndarray):
        torch = self.torch
        x = torch.from_numpy(np.array(hidden, dtype=np.float32)).to(self.device)
        t0 = time.perf_counter()
        out = self.stage.forward(x, s.cache, s.pos, s.skip)
        out = out.float().cpu().numpy()  # .cpu() waits for the device, so compute_ms is the real forward time
        s.pos += x.shape[1]
        return out, (time.perf_counter() - t0) * 1000.0

    def _end(self, sid: str) -> None:
        s = self.sessions.pop(sid, None)
        if s is not None:
            self.ledger.release(s.n)

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
            return {"ok": True, "free": self.ledger.free, "compute_ms": 0.0}, arr
        if op == "close":
            self._end(sid)
            mine.discard(sid)
            return {"ok": True, "free": self.ledger.free}, None
        if op == "prefill":
            n, skip = int(header["n"]), int(header["skip"])
            if sid in self.sessions or skip < 0 or n < 1 or skip + n != self.stage.n_blocks or arr is None:
                return {"ok": False, "error": "bad prefill", "free": self.ledger.free}, None
            if not self.ledger.admit(n):
                return {"ok": False, "error": "full", "free": self.ledger.free}, None
            self.sessions[sid] = Session(skip, n, self.new_cache())
            mine.add(sid)
        elif op != "decode" or sid not in self.sessions or arr is None:
            return {"ok": False, "error": f"bad request {op!r}", "free": self.ledger.free}, None
        out, ms = self._forward(self.sessions[sid], arr)
        if header.get("last"):
            self._end(sid)
            mine.discard(sid)
        return {"ok": True, "free": self.ledger.free, "compute_ms": ms}, out

    async def serve(self, host: str, port: int) -> None:
        try:
            server = await asyncio.start_server(self.handle, host, port)
        except OSError as exc:
            print(f"ERROR cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            raise SystemExit(3)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel sends SIGKILL when the launcher dies, even by SIGKILL (no orphan servers)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def main() -> None:
    cfg = json.loads(sys.stdin.read())
    _die_with_parent(int(cfg["parent_pid"]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher decides when servers stop (Ctrl-C reaches the group)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        server = StageServer(cfg)
    except Exception as exc:  # noqa: BLE001 — report any start-up failure as one line to the launcher
        print(f"ERROR server {cfg.get('name')} failed to start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(4)
    asyncio.run(server.serve(cfg.get("host", "127.0.0.1"), int(cfg.get("port", 0))))


if __name__ == "__main__":
    main()
