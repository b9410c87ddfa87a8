"""Costs a client/server split needs beyond the swarm model: activation sizes, link transfers, device block
times and the server's decode batch (docs/split.md §1; SplitLLM, Mudvari et al. 2024, as reconstructed in
related-work §3).

Per-block prefill/decode times come from the same fits and roofline rules as every server
(``perf.model.device_block_times``); this module adds only what the swarm model does not have.
"""

from __future__ import annotations

import numpy as np

from swarmplan.perf import memory, timing


def activation_bytes(model, tokens):
    """docs/split.md §1.1 — the hidden state of ``tokens`` positions at a split: tokens × one token's
    activation bytes (``memory.activation_bytes_per_token``, docs/model.md §17.2: d_model × dtype bytes).
    Llama-2-7B fp16, 512 tokens: 512 · 8192 = 4,194,304 bytes."""
    return np.asarray(tokens, dtype=float) * memory.activation_bytes_per_token(model)


def one_way_transfer_ms(n_bytes, bandwidth_mbit_per_s: float, rtt_ms: float):
    """docs/split.md §1.2 — one crossing of a device's link: half its round trip plus the serialisation of
    docs/model.md §17.2 for one transfer, RTT/2 + 8 · bytes / (bandwidth in bit/ms). 4,194,304 bytes up a
    100 Mbit/s link with RTT 20 ms: 10 + 335.54432 = 345.54432 ms. Up then down is RTT + both serialisations."""
    if bandwidth_mbit_per_s <= 0:
        raise ValueError("bandwidth must be positive")
    return rtt_ms / 2.0 + timing.transfer_ms_per_token(np.asarray(n_bytes, dtype=float), bandwidth_mbit_per_s, 1)


def decode_batch_roofline(bytes_per_param: float, tflops: float, bandwidth_gb_per_ms: float) -> int:
    """docs/split.md §1.3 — decode streams a GPU advances at its single-stream speed: a decode step reads the
    block's weights once (memory time P·b / bandwidth) and does 2·P FLOPs per stream (compute time
    2·P·B / TFLOPS); they balance at B* = b · TFLOPS / (2 · bandwidth) (A100, fp16: 2 · 312 / (2 · 2.039) =
    153; NF4: 40). Below B* a step costs the same for every batch size (docs/model.md §3.5)."""
    return max(1, int(np.floor(bytes_per_param * tflops / (2.0 * bandwidth_gb_per_ms) + 1e-9)))


def server_work_ms(n_blocks, prefill_ms_per_block, decode_ms_per_block, output_tokens, decode_batch: int):
    """docs/split.md §1.4 — GPU time a request costs a server that runs n of its blocks: prefill is
    compute-bound and does not share, a decode step shares the GPU with up to B streams:
    n · (τ^in(l_in) + (l_out − 1) · τ / B)."""
    return np.asarray(n_blocks) * (
        np.asarray(prefill_ms_per_block) + (np.asarray(output_tokens) - 1) * np.asarray(decode_ms_per_block) / decode_batch
    )


def client_blocks_that_fit(memory_gb: float, block_gb: float, kv_gb: float) -> int:
    """docs/split.md §1.5 — blocks a device can run for its own request: each needs its weights and one
    request's KV cache, ⌊M / (s_m + s_c)⌋ (8 GB, Llama-2-7B fp16 at 1024 tokens: ⌊8 / (0.40881 + 0.01678)⌋ = 18)."""
    return int(np.floor(memory_gb / (block_gb + kv_gb) + 1e-9))
