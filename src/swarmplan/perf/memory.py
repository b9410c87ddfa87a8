"""Block and KV-cache sizes, cache slots under both memory models (docs/model.md §2). GB = 1e9 bytes."""

from __future__ import annotations

import numpy as np

from swarmplan.scenario.swarm import ModelParams

GB = 1e9
GIB = 2**30
# Guard against floor() of a value that is an integer up to rounding (e.g. 26.9999999999).
_FLOOR_EPS = 1e-9

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def bytes_per_value(quant: str, dtype: str) -> float:
    """docs/model.md §2.1 — PETALS' get_block_size: NF4 = 4.25 bits, INT8 = 1 byte, else the dtype."""
    return {"nf4": 4.25 / 8, "int8": 1.0}.get(quant, DTYPE_BYTES[dtype])


def block_gb(model: ModelParams) -> float:
    """docs/model.md §2.1 — s_m = params per block × bytes per value × 1.01 (PETALS' overhead), in GB.
    BLOOM-176B NF4: 2,466,437,120 × 4.25/8 × 1.01 / 1e9 = 1.3234 GB (Sun et al. 2025, §2)."""
    if model.block_gb_override is not None:
        return float(model.block_gb_override)
    return model.params_per_block * bytes_per_value(model.quant, model.dtype) * 1.01 / GB


def kv_bytes_per_token_per_block(model: ModelParams) -> float:
    """docs/model.md §2.2 — K and V vectors of one token in one block: 2 · d_model / kv_groups · dtype bytes."""
    if model.kv_bytes_override is not None:
        return float(model.kv_bytes_override)
    return 2 * model.d_model / model.kv_groups * DTYPE_BYTES[model.dtype]


def kv_gb_per_request_per_block(model: ModelParams, tokens: int) -> float:
    """docs/model.md §2.2 — s_c: one request's KV cache in one block, sized for ``tokens`` tokens.
    BLOOM-176B, l_in + l_out = 148: 2·14336·148·2 / 1e9 = 0.008487 GB (Sun et al. 2025, §2)."""
    return kv_bytes_per_token_per_block(model) * tokens / GB


def activation_bytes_per_token(model: ModelParams) -> float:
    """docs/model.md §17.2 — one token's hidden state as sent between client and server: d_model × dtype
    bytes (PETALS sends hidden states in the model's dtype). LLaMA-2-7B fp16: 4096 · 2 = 8192 bytes."""
    if model.activation_bytes_override is not None:
        return float(model.activation_bytes_override)
    return (model.d_model or 14336) * DTYPE_BYTES[model.dtype]


def petals_attn_cache_tokens(model: ModelParams) -> int:
    """docs/model.md §2.4 — PETALS' fixed cache per block: 16384 tokens with GQA, else 4096 (petals #530)."""
    if model.attn_cache_tokens_override is not None:
        return model.attn_cache_tokens_override
    return 16384 if model.kv_groups > 1 else 4096


def petals_cache_gb_per_block(model: ModelParams) -> float:
    """docs/model.md §2.4 — B_cache = KV bytes per token per block × attn_cache_tokens (0.234881 GB for BLOOM)."""
    return kv_bytes_per_token_per_block(model) * petals_attn_cache_tokens(model) / GB


def autograd_reserve_gb(model: ModelParams) -> float:
    """docs/model.md §4.1 — PETALS reserves 2 GiB × d_model / 14336 for autograd (2.147 GB for BLOOM)."""
    d_model = model.d_model if model.d_model is not None else 14336
    return 2 * GIB * d_model / 14336 / GB


def _floor(x):
    return np.floor(np.asarray(x, dtype=float) + _FLOOR_EPS).astype(np.int64)


def cache_slots_proposed(memory_gb, n_blocks, block_gb_: float, kv_gb: float):
    """docs/model.md §2.3 — S_j = ⌊(M_j − s_m m_j) / s_c⌋ slots; one slot = one block's KV of one request."""
    m = np.asarray(n_blocks)
    slots = _floor((np.asarray(memory_gb) - block_gb_ * m) / kv_gb)
    return np.where(m > 0, np.maximum(slots, 0), 0)


def cache_slots_petals(n_blocks, cache_gb_per_block: float, kv_gb: float):
    """docs/model.md §2.4 — S_j^PETALS = ⌊m_j · B_cache / s_c⌋ (PETALS' fixed attention cache)."""
    return _floor(np.asarray(n_blocks) * cache_gb_per_block / kv_gb)


def session_capacity_proposed(memory_gb, n_blocks, block_gb_: float, kv_gb: float):
    """docs/model.md §2.5 — c_j = ⌊(M_j − s_m m_j) / (s_c m_j)⌋ requests through all m_j blocks."""
    m = np.asarray(n_blocks)
    safe = np.where(m > 0, m, 1)
    cap = _floor((np.asarray(memory_gb) - block_gb_ * m) / (kv_gb * safe))
    return np.where(m > 0, np.maximum(cap, 0), 0)


def petals_pool_token_blocks(n_blocks, attn_cache_tokens: int):
    """docs/model.md §17.3 — PETALS' server-wide KV pool in token·block units: attn_cache_tokens × m_j
    (memory_cache.py: max_size = KV bytes per block × num_blocks). LLaMA-2-7B, 32 blocks, 8192 tokens: 262,144."""
    return np.asarray(n_blocks, dtype=np.int64) * int(attn_cache_tokens)


def session_capacity_petals(cache_gb_per_block: float, kv_gb: float) -> int:
    """docs/model.md §2.5 — ⌊B_cache / s_c⌋ sessions (27 for BLOOM at 148 tokens)."""
    return int(_floor(cache_gb_per_block / kv_gb))
