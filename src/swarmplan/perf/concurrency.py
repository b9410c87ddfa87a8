"""The paper's concurrency target R and its bounds (docs/model.md §5.1, §6; Sun et al. 2025, BPRR §5–6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_FLOOR_EPS = 1e-9


@dataclass(frozen=True)
class TargetR:
    """The paper's choice of R and its inputs (docs/model.md §6): R = min(round(λT₁ + √(λT₁)), R_max)."""

    R: int
    single_request_ms: float  # T₁
    R_max: int


def cgbp_num_blocks(memory_gb, block_gb: float, kv_gb: float, R: int, n_blocks_model: int, max_blocks=None):
    """docs/model.md §5.1 — the conservative rule m_j = min(⌊M_j / (s_m + s_c R)⌋, L), then the clamp.
    R = 35: A100 86.13 GB → 53, MIG 9.1 GB → 5, clamped to 4."""
    m = np.floor(np.asarray(memory_gb, dtype=float) / (block_gb + kv_gb * R) + _FLOOR_EPS)
    m = np.clip(m, 0, n_blocks_model).astype(np.int64)
    if max_blocks is not None:
        m = np.minimum(m, np.asarray(max_blocks))
    return m


def r_max(memory_gb, block_gb: float, kv_gb: float, n_blocks_model: int) -> int:
    """docs/model.md §6 — R_max = ⌊(Σ_j M_j − s_m (L + N)) / (s_c (L + N))⌋ (196 for Abvt with 2 A100 + 7 MIG)."""
    n = len(memory_gb)
    total = float(np.sum(memory_gb))
    return int(math.floor((total - block_gb * (n_blocks_model + n)) / (kv_gb * (n_blocks_model + n)) + _FLOOR_EPS))


def round_half_up(x: float) -> int:
    """MATLAB's round (half away from zero for x ≥ 0); Python's round() is banker's rounding."""
    return int(math.floor(x + 0.5))


def target_concurrency(rate_per_ms: float, single_request_ms: float, R_max: int) -> int:
    """docs/model.md §6 — R = min(round(λT₁ + √(λT₁)), R_max): mean + 1 sd of the M/G/∞ number in system."""
    load = rate_per_ms * single_request_ms
    return max(1, min(round_half_up(load + math.sqrt(load)), R_max))


def cgbp_bound_ms(t_ordered, m_ordered, tau_last: float, K: int, n_blocks_model: int) -> float:
    """docs/model.md §5.3 — U = Σ_{i≤K} t_{o(i)} − τ_{o(K)} (Σ_{i≤K} m_{o(i)} − L): per-token decode bound
    of CG-BPRR under at most R concurrent requests (Sun et al. 2025, Theorem 2)."""
    t = np.asarray(t_ordered[:K], dtype=float)
    m = np.asarray(m_ordered[:K])
    return float(t.sum() - tau_last * (m.sum() - n_blocks_model))
