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
from swarmplan.runtime.wire import Link, client_handshake, read_frame, run_precise, send_frame
from swarmplan.sim.step_level import HopCosts, StepCosts


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
    # One core's CPU time of each piece of work, for the step-level prediction (docs/runtime.md §8.4);
    # NaN in a calibration written before they existed (the step-level mode then asks for a new one).
    decode_cpu_call_ms: float = float("nan")
    decode_cpu_block_ms: float = float("nan")
    prefill_cpu_call_ms: float = float("nan")
    prefill_cpu_call_token_ms: float = float("nan")
    prefill_cpu_block_ms: float = float("nan")
    prefill_cpu_block_token_ms: float = float("nan")
    server_message_cpu_ms: float = float("nan")
    client_message_cpu_ms: float = float("nan")
    client_head_cpu_ms: float = float("nan")
    client_embed_cpu_ms: float = float("nan")
    wake_ms: float = float("nan")
    threads: int = 1  # torch threads per server process (and the client's)

    def step_costs(self, cores: float, grouped: bool) -> StepCosts:
        """The fitted costs as the step-level simulator's input (docs/runtime.md §8.4)."""
        vals = dict(
            decode_call_ms=self.decode_cpu_call_ms,
            decode_block_ms=self.decode_cpu_block_ms,
            prefill_call_ms=self.prefill_cpu_call_ms,
            prefill_call_token_ms=self.prefill_cpu_call_token_ms,
            prefill_block_ms=self.prefill_cpu_block_ms,
            prefill_block_token_ms=self.prefill_cpu_block_token_ms,
            server_message_ms=self.server_message_cpu_ms,
            client_message_ms=self.client_message_cpu_ms,
            client_head_ms=self.client_head_cpu_ms,
            client_embed_ms=self.client_embed_cpu_ms,
            wake_ms=self.wake_ms,
        )
        missing = [k for k, v in vals.items() if not np.isfinite(v)]
        if missing:
            from swarmplan.errors import SwarmplanError

            raise SwarmplanError(
                "--calibration",
                f"has no CPU-time fit ({', '.join(missing)}) for the step-level prediction",
                "calibrate again with this version (`swarmplan calibrate --json`) or pass --prediction paper",
            )
        return StepCosts(**vals, cores=cores, grouped=grouped)

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


async def timed_hop(reader, writer, link: Link, header: dict, x) -> tuple[float, dict, object]:
    """One message and its reply on a measurement connection: (hop wall ms, reply header, reply tensor);
    a refusal is a bug of the measurement, not an outcome."""
    t0 = time.perf_counter()
    await send_frame(writer, link, header, x)
    reply, out = await read_frame(reader)
    if not reply.get("ok"):
        raise RuntimeError(f"measurement server refused: {reply}")
    return (time.perf_counter() - t0) * 1000.0, reply, out


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


def fit_cpu(decode_rows, prefill_rows) -> dict:
    """docs/runtime.md §8.4 — the forwards' CPU time (one core's work): decode c + τ·n and prefill
    α + β·l + n·(b + a·l), least squares on per-setting medians of decode_rows (n, cpu_ms) and prefill_rows
    (n, l, cpu_ms)."""
    d = np.asarray(decode_rows, float)
    ns = np.unique(d[:, 0])
    med = np.array([[n, np.median(d[d[:, 0] == n, 1])] for n in ns])
    tau, c = fit_line(med[:, 0], med[:, 1])
    p = np.asarray(prefill_rows, float)
    keys = np.unique(p[:, :2], axis=0)
    pm = np.array([[k[0], k[1], np.median(p[(p[:, 0] == k[0]) & (p[:, 1] == k[1]), 2])] for k in keys])
    a, b, alpha, beta = fit_prefill(pm[:, 0], pm[:, 1], pm[:, 2])
    return dict(
        decode_cpu_call_ms=c,
        decode_cpu_block_ms=tau,
        prefill_cpu_call_ms=alpha,
        prefill_cpu_call_token_ms=beta,
        prefill_cpu_block_ms=b,
        prefill_cpu_block_token_ms=a,
    )


def message_costs(hops_ms, server_cpu_ms: float, client_cpu_ms: float, count: int, rtt_ms: float) -> dict:
    """docs/runtime.md §8.4 — per message: the server's CPU o_s and the client's o_c (growth of each process's
    CPU time over ``count`` echo messages, divided by the count), and the timer lateness δ of each of the two
    delayed frames of a hop: median(hop) = RTT + o_c + o_s + 2δ when the machine is otherwise idle
    (``hop_costs`` with no forward in the hop)."""
    h = hop_costs(hops_ms, np.zeros(len(hops_ms)), server_cpu_ms, client_cpu_ms, count, rtt_ms)
    return dict(server_message_cpu_ms=h.server_message_ms, client_message_cpu_ms=h.client_message_ms, wake_ms=h.wake_ms)


def hop_costs(hops_ms, forward_ms, server_cpu_ms: float, client_cpu_ms: float, count: int, rtt_ms: float) -> HopCosts:
    """docs/runtime.md §8.4 (per link) — o_s, o_c: CPU time per message outside the forwards and the client's
    per-token work (already subtracted by the caller), over ``count`` hops; δ = (median(hop − forward) − RTT −
    o_s − o_c) / 2, never below 0. Worked: hops 14, 15, 16 ms with forwards 7 ms, RTT 3 ms, o_s 1, o_c 1 →
    δ = (8 − 3 − 1 − 1) / 2 = 1.5 ms."""
    o_s, o_c = server_cpu_ms / count, client_cpu_ms / count
    rest = float(np.median(np.asarray(hops_ms, float) - np.asarray(forward_ms, float)))
    wake = (rest - rtt_ms - o_s - o_c) / 2 if rtt_ms > 0 else 0.0
    return HopCosts(server_message_ms=o_s, client_message_ms=o_c, wake_ms=max(wake, 0.0))


def calibrate(
    arch: LlamaArch,
    device: str = "cpu",
    rtt_ms: float = 10.0,
    lengths=(8, 16, 32, 64),
    decode_steps: int = 12,
    repeats: int = 3,
    max_blocks: int = 4,
    host: str = "127.0.0.1",
    pings: int = 200,
) -> Calibration:
    m = min(arch.n_layers, max_blocks)
    secret = os.urandom(32)
    spec = ServerSpec(0, "calibration", 1, m, slots=m * 4, links={"client:0": (rtt_ms, None)})
    with ServerGroup(arch, [spec], secret, host=host, device=device) as group:
        dec, pre, msg = run_precise(
            _measure(arch, m, group.ports[0], secret, host, rtt_ms, lengths, decode_steps, repeats, device, pings)
        )
    head_ms, embed_ms = _client_cost(arch, device)
    fit = fit_calibration([r[:3] for r in dec], [r[:4] for r in pre], rtt_ms)
    fit |= fit_cpu([(r[0], r[3]) for r in dec], [(r[0], r[1], r[4]) for r in pre])
    fit |= message_costs(*msg, rtt_ms)
    return Calibration(
        device,
        arch.to_dict(),
        rtt_ms,
        client_ms_per_token=head_ms + embed_ms,
        samples=dict(decode=len(dec), prefill=len(pre), pings=msg[3], blocks=m, lengths=list(lengths)),
        client_head_cpu_ms=head_ms,
        client_embed_cpu_ms=embed_ms,
        **fit,
    )


async def _measure(arch, m, port, secret, host, rtt_ms, lengths, decode_steps, repeats, device, pings):
    rng = np.random.default_rng(0)
    reader, writer = await asyncio.open_connection(host, port)
    await client_handshake(reader, writer, secret, "client:0")
    link = Link(rtt_ms)
    dec, pre = [], []

    async def ask(header, x):
        return await timed_hop(reader, writer, link, header, x)

    sid = 0
    for rep in range(repeats + 1):  # the first round warms up caches and allocators and is dropped
        for n in range(1, m + 1):
            for l in lengths:
                sid += 1
                x = rng.standard_normal((1, l, arch.hidden)).astype(np.float32)
                hop, rep_, _ = await ask({"op": "prefill", "session": str(sid), "skip": m - n, "n": n}, x)
                if rep:
                    pre.append((n, l, hop, rep_["compute_ms"], rep_["cpu_ms"]))
                for step in range(decode_steps):
                    x = rng.standard_normal((1, 1, arch.hidden)).astype(np.float32)
                    hop, rep_, _ = await ask({"op": "decode", "session": str(sid), "last": step == decode_steps - 1}, x)
                    if rep:
                        dec.append((n, hop, rep_["compute_ms"], rep_["cpu_ms"]))
    # Echo messages of a decode step's size: each process's CPU per message and the hop's wall time.
    x = rng.standard_normal((1, 1, arch.hidden)).astype(np.float32)
    _, first, _ = await ask({"op": "ping"}, x)
    hops, c0 = [], time.thread_time()
    for _ in range(pings):
        hop, last, _ = await ask({"op": "ping"}, x)
        hops.append(hop)
    client_cpu = (time.thread_time() - c0) * 1000.0
    writer.close()
    return dec, pre, (hops, last["process_cpu_ms"] - first["process_cpu_ms"], client_cpu, pings)


def _client_cost(arch: LlamaArch, device: str, steps: int = 200) -> tuple[float, float]:
    """Median CPU time of the client's per-token work as the live client does it (docs/runtime.md §8.4):
    the LM head and greedy choice (``next_token``, including the hidden state's way from the wire) and the next
    token's embedding (``embed_ids`` to the bytes it sends)."""
    import torch

    torch.set_num_threads(1)
    head = Head(arch, device)
    heads, embeds = [], []
    x = head.embed_ids([1]).float().cpu().numpy()
    for t in range(steps):
        c0 = time.thread_time()
        head.next_token(x)
        c1 = time.thread_time()
        x = head.embed_ids([t % arch.vocab]).float().cpu().numpy()
        c2 = time.thread_time()
        heads.append(c1 - c0)
        embeds.append(c2 - c1)
    return float(np.median(heads)) * 1000.0, float(np.median(embeds)) * 1000.0
