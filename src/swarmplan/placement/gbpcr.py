"""GBP-CR: greedy block placement with cache reservation c (docs/model.md §14.1; Sun, He, Hou 2026, Alg. 1).

Each server keeps cache for c concurrent jobs on every block it holds: m_j(c) = min(⌊M_j/(s_m + s_c c)⌋, L)
(and the GPU's clamp). Servers in increasing amortised time t̃_j = t_j/m_j, t_j = τ^c_j + τ^p_j m_j, fill
disjoint chains block 1..L one after another; placement stops once the complete chains' service rate
Σ_k 1/T_k reaches λ/(ρ̄ c). Servers not reached hold nothing. Times are whole-request (τ^c_j =
RTT^in + (l_out−1)RTT, τ^p_j = τ^in + (l_out−1)τ: docs/model.md §3.3), for the slowest client.
"""

from __future__ import annotations

import numpy as np

from swarmplan.errors import NoSolutionError, SwarmplanError
from swarmplan.perf.concurrency import cgbp_num_blocks
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for


def whole_request_times(pm: PerfModel) -> tuple[np.ndarray, np.ndarray]:
    """(τ^c_j, τ^p_j) per server: communication per job and computation per block per job (worst client)."""
    l_out = pm.output_tokens
    tau_c = (pm.rtt_in_ms + (l_out - 1) * pm.rtt_ms).max(axis=0)
    tau_p = pm.tau_in_ms + (l_out - 1) * pm.tau_ms
    return tau_c, tau_p


def gbp_cr(pm: PerfModel, c: int, rate_per_s: float, target_load: float = 0.7, method: str = "gbp-cr") -> Placement:
    if c < 1:
        raise SwarmplanError("c", f"c = {c} is not a positive integer", "give c ≥ 1")
    L = pm.L
    m = cgbp_num_blocks(pm.memory_gb, pm.block_gb, pm.kv_gb, c, L, pm.max_blocks)
    if m.sum() < L:
        raise NoSolutionError("c", f"with cache for c = {c} jobs per block the servers hold only {int(m.sum())} of {L} blocks",
                             "lower c or add servers")
    tau_c, tau_p = whole_request_times(pm)
    t = tau_c + tau_p * m
    t_tilde = np.where(m > 0, t / np.maximum(m, 1), np.inf)
    need = rate_per_s / 1000.0 / (target_load * c)
    start = np.zeros(pm.n_servers, dtype=np.int64)
    placed = np.zeros(pm.n_servers, dtype=bool)
    a, T, nu = 1, 0.0, 0.0
    chains, current = [], []
    for j in (int(x) for x in np.argsort(t_tilde, kind="stable") if m[x] > 0):
        start[j] = min(a, L - m[j] + 1)
        placed[j] = True
        T += t[j]
        current.append(j)
        a = min(a + m[j] - 1, L) + 1
        if a > L:
            nu += 1.0 / T
            chains.append(current)
            if nu >= need:
                break
            a, T, current = 1, 0.0, []
    n_blocks = np.where(placed, m, 0)
    return Placement(
        method=method, start=np.where(placed, start, 0), n_blocks=n_blocks,
        cache_slots=slots_for(pm, n_blocks, "proposed"), memory_model="proposed", R=None,
        info={"c": c, "chains_formed": [tuple(ch) for ch in chains], "K": len(chains), "rate_of_chains_per_s": nu * 1000,
              "target_rate_per_s": need * 1000, "target_load": target_load},
    )
