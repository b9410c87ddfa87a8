"""PETALS' own sizing and throughput rules (docs/model.md §4.1–4.2; petals server.py, throughput.py)."""

from __future__ import annotations

import numpy as np

_FLOOR_EPS = 1e-9


def petals_num_blocks(
    memory_gb, block_gb: float, cache_gb_per_block: float, autograd_gb: float, n_blocks_model: int, max_blocks=None
):
    """docs/model.md §4.1 — m = min(⌊(M − autograd) / (s_m + B_cache)⌋, L), then the per-GPU clamp.
    A100 86.13 GB → 53 blocks, MIG 9.1 GB → 4 (BPRR §8.2). 0 means the GPU cannot serve a block."""
    m = np.floor((np.asarray(memory_gb, dtype=float) - autograd_gb) / (block_gb + cache_gb_per_block) + _FLOOR_EPS)
    m = np.clip(m, 0, n_blocks_model).astype(np.int64)
    if max_blocks is not None:
        m = np.minimum(m, np.asarray(max_blocks))
    return m


def petals_throughput(forward_rps, network_rps, n_blocks):
    """docs/model.md §4.2 — announced throughput = min(forward_rps / ((m + 1)/2), network_rps) tokens/s.
    A100 with 53 blocks: min(20829.4/27, 3020.4) = 771.5; MIG with 4: min(2757.7/2.5, 3138.1) = 1103.1."""
    m = np.asarray(n_blocks, dtype=float)
    return np.minimum(np.asarray(forward_rps) / ((m + 1) / 2), np.asarray(network_rps))
