"""Per-link hop costs measured on the run's own emulated links, just before the run (docs/runtime.md §8.4).

The transport's cost of a hop is not one number on this host. An echo through the emulated link costs each
process 0.17 ms of CPU at RTT 0 but 0.5–0.8 ms when the link's delay puts it to sleep on a timer, and how late
that timer wakes depends on the delay itself (0.1–2 ms for delays of 1–20 ms, a fixed pattern per delay, not
noise). The client's LM head also costs ~3× more between hops than in a tight loop (a server's forward ran
on the core in between and evicted its weights from the caches). So these costs are measured the way the
live client incurs them: per distinct RTT of the run's client↔server links, one session of decode steps
against a real server process holding real blocks, the client doing the LM head and embedding between hops
exactly as ``runtime.client.ChainRunner`` does.

Per link, with K decode hops: o_s = (growth of the server process's CPU time − its forwards' CPU) / K;
o_c = (growth of the client thread's CPU time − LM heads and embeddings) / K; the timer lateness of each of a
hop's two delayed frames δ = (median(hop − forward wall) − RTT − o_s − o_c) / 2 (Eq. 8.5's δ, now per link).
h and e are the medians of the LM head's and the embedding's CPU time over all links' steps.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from swarmplan.runtime.calibrate import hop_costs, timed_hop
from swarmplan.runtime.launch import ServerGroup, ServerSpec
from swarmplan.runtime.model import Head, LlamaArch
from swarmplan.runtime.wire import Link, client_handshake, run_precise


@dataclass
class LinkCosts:
    """What ``measure_link_costs`` found: per RTT (ms) the hop's costs, and the client's per-token work."""

    hops: dict  # RTT ms → sim.step_level.HopCosts
    client_head_ms: float
    client_embed_ms: float
    steps: int

    def to_json(self) -> dict:
        return dict(
            hops={f"{r:.6g}": asdict(h) for r, h in sorted(self.hops.items())},
            client_head_ms=self.client_head_ms,
            client_embed_ms=self.client_embed_ms,
            steps=self.steps,
        )


def distinct_rtts(rtt_ms) -> list[float]:
    """The distinct positive RTTs of a set of links, rounded to a microsecond (equal links are measured once)."""
    return sorted({round(float(r), 3) for r in np.ravel(rtt_ms) if np.isfinite(r) and r > 0})


def measure_link_costs(
    arch: LlamaArch,
    rtts_ms,
    device: str = "cpu",
    host: str = "127.0.0.1",
    steps: int = 48,
    blocks: int = 4,
    bandwidth_mbit_s: float | None = None,
) -> LinkCosts:
    """Measure every link's hop costs against one real server process of ``blocks`` blocks (one emulated link
    per RTT, told apart by the peer name). About (steps + 8) × (RTT + one step's work) per link."""
    rtts = distinct_rtts(rtts_ms)
    m = max(1, min(arch.n_layers, blocks))
    secret = os.urandom(32)
    links = {f"client:{k}": (r, bandwidth_mbit_s) for k, r in enumerate(rtts)}
    spec = ServerSpec(0, "link-costs", 1, m, slots=m * 2, links=links)
    with ServerGroup(arch, [spec], secret, host=host, device=device) as group:
        return run_precise(_measure(arch, m, group.ports[0], secret, host, rtts, steps, device, bandwidth_mbit_s))


async def _measure(arch, m, port, secret, host, rtts, steps, device, bw) -> LinkCosts:
    import torch

    torch.set_num_threads(1)
    head = Head(arch, device)
    rng = np.random.default_rng(0)
    heads, embeds, hops = [], [], {}
    for k, rtt in enumerate(rtts):
        reader, writer = await asyncio.open_connection(host, port)
        await client_handshake(reader, writer, secret, f"client:{k}")
        link = Link(rtt, bw)

        async def ask(header, x, writer=writer, reader=reader, link=link):
            return await timed_hop(reader, writer, link, header, x)

        for rep in range(2):  # a short warm-up session (allocations, first forward), then the measured one
            n_steps = 8 if rep == 0 else steps
            sid = f"{k}.{rep}"
            prompt = rng.standard_normal((1, 16, arch.hidden)).astype(np.float32)
            _, _, x = await ask({"op": "prefill", "session": sid, "skip": 0, "n": m}, prompt)
            _, first, _ = await ask({"op": "ping"}, None)
            wall, fwd, fwd_cpu, own = [], [], 0.0, 0.0
            c0 = time.thread_time()
            for step in range(n_steps):
                h0 = time.thread_time()
                tok = head.next_token(x)
                h1 = time.thread_time()
                e = head.embed_ids([tok]).float().cpu().numpy()
                h2 = time.thread_time()
                if rep:
                    heads.append((h1 - h0) * 1000.0)
                    embeds.append((h2 - h1) * 1000.0)
                own += (h2 - h0) * 1000.0
                hop, reply, x = await ask({"op": "decode", "session": sid, "last": step == n_steps - 1}, e)
                wall.append(hop)
                fwd.append(float(reply["compute_ms"]))
                fwd_cpu += float(reply["cpu_ms"])
            client_cpu = (time.thread_time() - c0) * 1000.0 - own
            _, last, _ = await ask({"op": "ping"}, None)
            if rep:
                server_cpu = last["process_cpu_ms"] - first["process_cpu_ms"] - fwd_cpu
                # n_steps decode messages plus the closing ping's dispatch: n_steps + 1 messages of server work
                hops[rtt] = hop_costs(wall, fwd, server_cpu * n_steps / (n_steps + 1), client_cpu, n_steps, rtt)
        writer.close()
    return LinkCosts(hops, float(np.median(heads)), float(np.median(embeds)), steps)
