"""Per-hop, per-chain and per-request times (docs/model.md §3; Sun et al. 2025, BPRR §3)."""

from __future__ import annotations

import math

import numpy as np


def prefill_ms_per_block(slope_ms_per_token, base_ms, input_tokens):
    """docs/model.md §3.1 — τ^in = slope · l_in + base (A100: 0.0743·20 + 32.99 = 34.476 ms)."""
    return np.asarray(slope_ms_per_token) * input_tokens + np.asarray(base_ms)


def token_rtt_ms(rtt_raw_ms, overhead_ms: float):
    """docs/model.md §3.2 — RTT_cj = RTT_raw(c, j) + o (o = 100 ms)."""
    return np.asarray(rtt_raw_ms) + overhead_ms


def input_rtt_ms(rtt_raw_ms, per_token_ms: float, base_ms: float, input_tokens):
    """docs/model.md §3.2 — RTT^in_cj = RTT_raw(c, j) + 0.7049 · l_in + 67 (81.098 ms extra at l_in = 20)."""
    return np.asarray(rtt_raw_ms) + per_token_ms * np.asarray(input_tokens) + base_ms


# docs/model.md §17.2 — PETALS' released client relays every hop: it sends the hop's input hidden states to
# the server and receives the outputs back (client → server → client → next server; petals.md §7.2), so each
# hop moves the activations twice over the client↔server link. swarmplan models this pattern for every method.
CLIENT_RELAY_TRANSFERS_PER_HOP = 2


def transfer_ms_per_token(bytes_per_token: float, bandwidth_mbps, transfers: int = CLIENT_RELAY_TRANSFERS_PER_HOP):
    """docs/model.md §17.2 — time one token's activations add to a hop: transfers × bytes × 8 / bandwidth.
    LLaMA-2-7B (8192 B) at 650.8 Mbit/s, client relay: 2 · 8192 · 8 / 650.8e3 = 0.20140 ms per token, so a
    2048-token prompt adds 412.47 ms per hop. An infinite bandwidth gives 0."""
    bw = np.asarray(bandwidth_mbps, dtype=float)
    return transfers * bytes_per_token * 8.0 / (bw * 1e3)


def chain_token_ms(rtt_ms, tau_ms, processed) -> float:
    """docs/model.md §3.3 — t_tok(p) = Σ_k (RTT_{c j_k} + τ_{j_k} n_k) for one decode step."""
    return float(np.sum(np.asarray(rtt_ms) + np.asarray(tau_ms) * np.asarray(processed)))


def chain_first_token_ms(rtt_in_ms, tau_in_ms, processed) -> float:
    """docs/model.md §3.3 — t_1(p) = Σ_k (RTT^in_{c j_k} + τ^in_{j_k} n_k) (prefill and first token)."""
    return float(np.sum(np.asarray(rtt_in_ms) + np.asarray(tau_in_ms) * np.asarray(processed)))


def request_service_ms(first_token_ms: float, token_ms: float, output_tokens: int) -> float:
    """docs/model.md §3.3 — T(p) = t_1(p) + (l_out − 1) · t_tok(p)."""
    return first_token_ms + (output_tokens - 1) * token_ms


def hop_service_ms(rtt_in, rtt, tau_in, tau, processed, output_tokens):
    """docs/model.md §3.3/§8 — a hop's whole-request time: [RTT^in + (l_out−1)RTT] + [τ^in + (l_out−1)τ]·k.
    Summed over a chain this is T(p); it is WS-RR's edge weight without the wait."""
    return (rtt_in + (output_tokens - 1) * rtt) + (tau_in + (output_tokens - 1) * tau) * processed


def backoff_ms(raw_wait_ms: float, first_ms: float = 1000.0, max_ms: float = 60_000.0) -> float:
    """docs/model.md §3.4 — B(W): 0 if W ≤ 0, else the smallest cumulative sum of min(first·2^a, max)
    (1, 3, 7, 15, 31, 63, 123, 183, … s) that is ≥ W (PETALS-style retries, Sun et al. 2025 §9.4)."""
    if raw_wait_ms <= 0:
        return 0.0
    total, step = 0.0, first_ms
    while total < raw_wait_ms and step != max_ms:  # the steps before they reach the cap
        total += step
        step = min(step * 2, max_ms)
    if total >= raw_wait_ms:
        return total
    if float(total).is_integer() and float(step).is_integer() and 0 < step < 2.0**52 and raw_wait_ms < 2.0**52:
        # Equal steps of whole milliseconds add exactly below 2^53: jump to the first sum ≥ W at once
        # (the loop would take W / 60 s steps, which grows without bound under overload).
        n = max(math.ceil((raw_wait_ms - total) / step), 1)
        while n > 1 and total + (n - 1) * step >= raw_wait_ms:
            n -= 1
        while total + n * step < raw_wait_ms:
            n += 1
        return total + n * step
    while total < raw_wait_ms:
        total += step
        step = min(step * 2, max_ms)
    return total


def backoff_ms_reference(raw_wait_ms: float, first_ms: float = 1000.0, max_ms: float = 60_000.0) -> float:
    """``backoff_ms`` by its definition: add the steps one by one."""
    if raw_wait_ms <= 0:
        return 0.0
    total, step = 0.0, first_ms
    while total < raw_wait_ms:
        total += step
        step = min(step * 2, max_ms)
    return total


def fit_scale_factors(block_gb_model: float, block_gb_ref: float, params_model: int | None, params_ref: int):
    """docs/model.md §3.1 — fitted times are for BLOOM-176B NF4 blocks; for another model decode (memory-bound)
    scales with block bytes and prefill (compute-bound) with parameters per block."""
    decode = block_gb_model / block_gb_ref
    prefill = (params_model / params_ref) if params_model else decode
    return decode, prefill


def roofline_times(block_gb: float, params_per_block: float, tflops, bandwidth_gb_per_ms, overhead_ms):
    """docs/model.md §3.1 — the follow-up's per-block times from specs: decode is memory-bound,
    τ = s_m / bandwidth (ms per token); prefill is compute-bound, 2·P FLOPs per token per block at the card's
    TFLOPS, τ^in = t_o + l_in · 2P / (TFLOPS·1e9) ms, with t_o ≈ 1 ms. (BLOOM-176B on a 120-TFLOPS,
    1.02 GB/ms card: 0.0417 ms per input token and 1.294 ms per output token, as in Sun, He, Hou 2026.)
    Returns (decode ms, prefill ms per input token, prefill base ms) per server."""
    tflops = np.asarray(tflops, dtype=float)
    return (
        block_gb / np.asarray(bandwidth_gb_per_ms, dtype=float),
        2.0 * params_per_block / (tflops * 1e9),
        np.asarray(overhead_ms, dtype=float),
    )
