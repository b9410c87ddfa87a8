"""Messages between runtime processes and the emulated WAN link (docs/runtime.md §2–3).

A frame is a 4-byte big-endian header length, a JSON header, then ``nbytes`` raw bytes (a tensor's data,
C-contiguous, dtype and shape in the header) — no pickle, so a peer can only ever send numbers. A connection
starts with a challenge: the server sends a random nonce, the client answers HMAC-SHA256(secret, nonce) and
its name; a wrong answer closes the connection. A ``Link`` delays every frame it sends by the one-way
propagation delay plus bytes / bandwidth (docs/runtime.md §3).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import selectors
import struct
from dataclasses import dataclass

import numpy as np

MAX_HEADER = 1 << 16
MAX_PAYLOAD = 1 << 30
_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


class WireError(ConnectionError):
    """The peer closed, sent something malformed, or failed the challenge."""


@dataclass(frozen=True)
class Link:
    """docs/runtime.md §3 — the emulated link a sender sits behind: one-way delay = RTT/2, plus bytes/bandwidth."""

    rtt_ms: float = 0.0
    bandwidth_mbit_s: float | None = None

    def delay_s(self, nbytes: int) -> float:
        """One-way time of a frame of ``nbytes``: RTT/2 + 8·bytes / bandwidth (worked: 20 ms RTT, 1 kB at
        8 Mbit/s → 10 ms + 1 ms = 11 ms)."""
        transfer_ms = 0.0 if not self.bandwidth_mbit_s else nbytes * 8 / (self.bandwidth_mbit_s * 1e3)
        return (self.rtt_ms / 2 + transfer_ms) / 1000.0


SELECT_LIMIT = 1024  # FD_SETSIZE: select() cannot watch a descriptor at or above it


def run_precise(coro, descriptors: int = 0):
    """Run ``coro`` on an event loop whose timers are precise to the microsecond (docs/runtime.md §3).

    asyncio's default loop waits with epoll, whose timeout is whole milliseconds (rounded up), so an emulated
    delay d came out late by 0.1–1.8 ms in a pattern that depends on d and on the phase of the clock; with
    select(), whose timeout is in microseconds, it is late by a steady ~0.3 ms on this host (the wake-up
    itself). select() cannot watch descriptors numbered 1024 or more: when the process already has open, plus
    the ``descriptors`` the caller may open (its connections), could reach that, the default loop runs instead
    (millisecond timers; still correct)."""
    if precise_loop_fits(descriptors):
        factory = lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())  # noqa: E731
    else:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def precise_loop_fits(descriptors: int) -> bool:
    """Whether this process's open descriptors plus ``descriptors`` more (and a margin of 64 for what the loop
    and libraries open) stay below select()'s limit."""
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 64
    return open_now + int(descriptors) + 64 < SELECT_LIMIT


def encode(header: dict, array: np.ndarray | None = None) -> bytes:
    """One frame: header (with dtype/shape/nbytes of the array, if any) and the array's raw bytes."""
    payload = b""
    header = dict(header)
    if array is not None:
        array = np.ascontiguousarray(array)
        header.update(dtype=str(array.dtype), shape=list(array.shape))
        payload = array.tobytes()
    header["nbytes"] = len(payload)
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict, np.ndarray | None]:
    try:
        (n,) = struct.unpack(">I", await reader.readexactly(4))
        if n > MAX_HEADER:
            raise WireError(f"header of {n} bytes is too large")
        header = json.loads(await reader.readexactly(n))
        nbytes = int(header.get("nbytes", 0))
        if nbytes > MAX_PAYLOAD:
            raise WireError(f"payload of {nbytes} bytes is too large")
        payload = await reader.readexactly(nbytes) if nbytes else b""
    except (asyncio.IncompleteReadError, ConnectionError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireError(str(exc) or type(exc).__name__) from exc
    if not nbytes:
        return header, None
    dtype = _DTYPES.get(header.get("dtype"))
    shape = header.get("shape")
    if dtype is None or not isinstance(shape, list) or int(np.prod(shape)) * np.dtype(dtype).itemsize != nbytes:
        raise WireError("tensor header does not match its payload")
    return header, np.frombuffer(payload, dtype=dtype).reshape(shape)


async def send_frame(writer: asyncio.StreamWriter, link: Link, header: dict, array: np.ndarray | None = None) -> None:
    """Send after the link's one-way delay (the sender's event loop stays free meanwhile)."""
    frame = encode(header, array)
    delay = link.delay_s(len(frame))
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        writer.write(frame)
        await writer.drain()
    except ConnectionError as exc:
        raise WireError(str(exc) or type(exc).__name__) from exc


def answer(secret: bytes, nonce: bytes) -> str:
    return hmac.new(secret, nonce, hashlib.sha256).hexdigest()


async def server_challenge(reader, writer, secret: bytes, timeout_s: float = 5.0) -> str:
    """Server side of the handshake; returns the peer's name or raises WireError (caller closes)."""
    nonce = os.urandom(16)
    writer.write(encode({"op": "challenge", "nonce": nonce.hex()}))
    await writer.drain()
    try:
        header, _ = await asyncio.wait_for(read_frame(reader), timeout_s)
    except asyncio.TimeoutError as exc:
        raise WireError("no answer to the challenge") from exc
    if not hmac.compare_digest(str(header.get("answer", "")), answer(secret, nonce)):
        raise WireError("wrong shared secret")
    return str(header.get("peer", "?"))


async def client_handshake(reader, writer, secret: bytes, peer: str) -> None:
    header, _ = await read_frame(reader)
    if header.get("op") != "challenge":
        raise WireError("the server did not send a challenge")
    writer.write(encode({"op": "hello", "peer": peer, "answer": answer(secret, bytes.fromhex(header["nonce"]))}))
    await writer.drain()
