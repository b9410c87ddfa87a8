"""Fit the paper's linear timing model on this machine (docs/runtime.md §5; BPRR §3.1, docs/model.md §3.1–3.2).

One real server process holds m blocks behind an emulated link of RTT r; the client opens sessions that
enter it at every n = 1..m blocks, with several input lengths l, and times each hop end to end (send to
reply) while the server reports its forward's own time. Fits (least squares on per-setting medians):
* decode: forward(n) = c + τ·n → τ (per block per token; the per-call constant c is per hop);
* prefill: forward(n, l) = α + β·l + n·(b + a·l) → τ^in(l) = a·l + b per block;
* per-hop overhead: o = median over decode hops of (hop − r − τ·n) — transport, (de)serialisation, the
  forward's per-call constant and the emulated sleep's timer granularity, measured with the same emulation
  the validation uses;
* input overhead: hop − r − n·τ^in(l) = o_in(l) = p·l + q.
These are exactly the fields of a scenario's GPU type (decode_ms_per_block, prefill_ms_per_token_per_block,
prefill_ms_per_block) and timing knobs (overhead_ms, input_overhead_per_token_ms, input_overhead_base_ms).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from swarmplan.runtime.launch import ServerGroup, ServerSpec
from swarmplan.runtime.model import Head, LlamaArch
from swarmplan.runtime.wire import Link, client_handshake, read_frame, send_frame


@dataclass
class Calibration:
    device: str
    arch: dict
    rtt_ms: float
    decode_ms_per_block: float
    prefill_ms_per_token_per_block: float
    prefill_ms_per_block: float
    overhead_ms: float
    input_overhead_per_token_ms: float
    input_overhead_base_ms: float
    client_ms_per_token: float  # embedding + norm + LM head at the client (not in the paper's model)
    samples: dict = field(default_factory=dict)

    def gpu_entry(self, memory_gb: float, max_blocks: int | None = None) -> dict:
        """A scenario ``gpus:`` entry with these fitted times (fields of scenario.models.GpuSpec)."""
        entry = dict(
            memory_gb=memory_gb,
            decode_ms_per_block=round(self.decode_ms_per_block, 6),
            prefill_ms_per_token_per_block=round(self.prefill_ms_per_token_per_block, 6),
            prefill_ms_per_block=round(self.prefill_ms_per_block, 6),
            timing="fitted",
        )
        if max_blocks:
            entry["max_blocks"] = max_blocks
        return entry

    def timing_entry(self) -> dict:
        """The scenario ``timing:`` knobs these measurements replace (d_init = 0: sessions open with the
        prefill over pooled connections, so no set-up round trip exists; docs/runtime.md §4)."""
        return dict(
            overhead_ms=round(self.overhead_ms, 6),
            input_overhead_per_token_ms=round(self.input_overhead_per_token_ms, 6),
            input_overhead_base_ms=round(self.input_overhead_base_ms, 6),
            initial_delay_ms=0.0,
        )

    def to_json(self) -> dict:
        return asdict(self)


def fit_line(x, y) -> tuple[float, float]:
    """Least-squares y = slope·x + intercept."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(intercept)


def fit_prefill(n, l, y) -> tuple[float, float, float, float]:
    """Least squares y = α + β·l + n·(b + a·l); returns (a, b, α, β) — a, b per block, α, β per call."""
    n, l, y = (np.asarray(v, float) for v in (n, l, y))
    X = np.column_stack([np.ones_like(n), l, n, n * l])
    alpha, beta, b, a = np.linalg.lstsq(X, y, rcond=None)[0]
    return float(a), float(b), float(alpha), float(beta)


def fit_calibration(decode_rows, prefill_rows, rtt_ms: float) -> dict:
    """decode_rows: (n, hop_ms, compute_ms); prefill_rows: (n, l, hop_ms, compute_ms) → the model's fields.
    Medians per setting first, so a stray slow sample (another process on the core) does not tilt a fit."""
    d = np.asarray(decode_rows, float)
    ns = np.unique(d[:, 0])
    med = np.array([np.median(d[d[:, 0] == n], axis=0) for n in ns])
    tau, _ = fit_line(med[:, 0], med[:, 2])
    tau = max(tau, 0.0)
    overhead = float(np.median(d[:, 1] - rtt_ms - tau * d[:, 0]))
    p = np.asarray(prefill_rows, float)
    keys = np.unique(p[:, :2], axis=0)
    pm = np.array([np.median(p[(p[:, 0] == k[0]) & (p[:, 1] == k[1])], axis=0) for k in keys])
    a, b, _, _ = fit_prefill(pm[:, 0], pm[:, 1], pm[:, 3])
    a, b = max(a, 0.0), max(b, 0.0)
    resid = pm[:, 2] - rtt_ms - pm[:, 0] * (a * pm[:, 1] + b)
    p_slope, p_base = fit_line(pm[:, 1], resid)
    return dict(
        decode_ms_per_block=tau,
        prefill_ms_per_token_per_block=a,
        prefill_ms_per_block=b,
        overhead_ms=max(overhead, 0.0),
        input_overhead_per_token_ms=max(p_slope, 0.0),
        input_overhead_base_ms=max(p_base, 0.0),
    )


def calibrate(
    arch: LlamaArch,
    device: str = "cpu",
    rtt_ms: float = 10.0,
    lengths=(8, 16, 32, 64),
    decode_steps: int = 12,
    repeats: int = 3,
    max_blocks: int = 4,
    host: str = "127.0.0.1",
) -> Calibration:
    m = min(arch.n_layers, max_blocks)
    secret = os.urandom(32)
    spec = ServerSpec(0, "calibration", 1, m, slots=m * 4, links={"client:0": (rtt_ms, None)})
    with ServerGroup(arch, [spec], secret, host=host, device=device) as group:
        dec, pre = asyncio.run(_measure(arch, m, group.ports[0], secret, host, rtt_ms, lengths, decode_steps, repeats, device))
    client_ms = _client_cost(arch, device)
    fit = fit_calibration(dec, pre, rtt_ms)
    return Calibration(
        device,
        arch.to_dict(),
        rtt_ms,
        client_ms_per_token=client_ms,
        samples=dict(decode=len(dec), prefill=len(pre), blocks=m, lengths=list(lengths)),
        **fit,
    )


async def _measure(arch, m, port, secret, host, rtt_ms, lengths, decode_steps, repeats, device):
    rng = np.random.default_rng(0)
    reader, writer = await asyncio.open_connection(host, port)
    await client_handshake(reader, writer, secret, "client:0")
    link = Link(rtt_ms)
    dec, pre = [], []

    async def ask(header, x):
        t0 = time.perf_counter()
        await send_frame(writer, link, header, x)
        reply, out = await read_frame(reader)
        if not reply.get("ok"):
            raise RuntimeError(f"calibration server refused: {reply}")
        return (time.perf_counter() - t0) * 1000.0, reply["compute_ms"], out

    sid = 0
    for rep in range(repeats + 1):  # the first round warms up caches and allocators and is dropped
        for n in range(1, m + 1):
            for l in lengths:
                sid += 1
                x = rng.standard_normal((1, l, arch.hidden)).astype(np.float32)
                hop, comp, _ = await ask({"op": "prefill", "session": str(sid), "skip": m - n, "n": n}, x)
                if rep:
                    pre.append((n, l, hop, comp))
                for step in range(decode_steps):
                    x = rng.standard_normal((1, 1, arch.hidden)).astype(np.float32)
                    hop, comp, _ = await ask({"op": "decode", "session": str(sid), "last": step == decode_steps - 1}, x)
                    if rep:
                        dec.append((n, hop, comp))
    writer.close()
    return dec, pre


def _client_cost(arch: LlamaArch, device: str, steps: int = 200) -> float:
    """Median time of the client's per-token work (embedding in, norm and LM head out)."""
    import torch

    torch.set_num_threads(1)
    head = Head(arch, device)
    times = []
    with torch.inference_mode():
        for t in range(steps):
            t0 = time.perf_counter()
            head.next_token(head.embed_ids([t % arch.vocab]))
            times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))
