"""GBP-CR: greedy block placement with cache reservation c (docs/model.md §14.1; Sun, He, Hou 2026, Alg. 1).

Each server keeps cache for c concurrent jobs on every block it holds: m_j(c) = min(⌊M_j/(s_m + s_c c)⌋, L)
(and the GPU's clamp). Servers in increasing amortised time t̃_j = t_j/m_j, t_j = τ^c_j + τ^p_j m_j, fill
disjoint chains block 1..L one after another; placement stops once the complete chains' service rate
Σ_k 1/T_k reaches λ/(ρ̄ c). Servers not reached hold nothing. Times are whole-request (τ^c_j =
RTT^in + (l_out−1)RTT, τ^p_j = τ^in + (l_out−1)τ: docs/model.md §3.3), for the slowest client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
        raise NoSolutionError(
            "c",
            f"with cache for c = {c} jobs per block the servers hold only {int(m.sum())} of {L} blocks",
            "lower c or add servers",
        )
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
    return _placement(pm, c, m, start, placed, [tuple(ch) for ch in chains], nu, need, target_load, method)


def _placement(pm, c, m, start, placed, chains, nu, need, target_load, method) -> Placement:
    """GBP-CR's placement from the servers it placed and the chains it formed (docs/model.md §14.1)."""
    n_blocks = np.where(placed, m, 0)
    return Placement(
        method=method,
        start=np.where(placed, start, 0),
        n_blocks=n_blocks,
        cache_slots=slots_for(pm, n_blocks, "proposed"),
        memory_model="proposed",
        R=None,
        info={
            "c": c,
            "chains_formed": chains,
            "K": len(chains),
            "rate_of_chains_per_s": nu * 1000,
            "target_rate_per_s": need * 1000,
            "target_load": target_load,
        },
    )


@dataclass(frozen=True)
class GbpCrOption:
    """One c of ``gbp_cr_all_c``: what choosing c needs to know, and the placement on demand."""

    c: int
    key: tuple  # equal keys ⇔ equal placements (start, blocks, slots)
    K: int
    rate_of_chains_per_s: float
    target_rate_per_s: float
    build: Callable[[], Placement]


def gbp_cr_all_c(pm: PerfModel, cs, rate_per_s: float, target_load: float = 0.7):
    """GBP-CR for every c in ``cs`` (increasing) at once, equal to ``gbp_cr(pm, c, …)`` for each
    (docs/model.md §14.5). Yields a GbpCrOption per feasible c, in order.

    m(c) changes only at the few c where some memory class drops a block, and for one m the servers fill
    chains in one fixed sequence; c only moves where the fill stops (the first chain whose cumulative rate
    reaches λ/(ρ̄c), which falls as c grows). So one fill per distinct m serves all its c.
    """
    L = pm.L
    cs = np.asarray(list(cs), dtype=np.int64)
    if len(cs) == 0:
        return
    classes, inv = np.unique(np.stack([pm.memory_gb, pm.max_blocks.astype(float)]), axis=1, return_inverse=True)
    m_cls = cgbp_num_blocks(classes[0][None, :], pm.block_gb, pm.kv_gb, cs[:, None], L, classes[1].astype(np.int64)[None, :])
    needs = rate_per_s / 1000.0 / (target_load * cs)  # λ/(ρ̄c) per c, as gbp_cr computes it
    tau_c, tau_p = whole_request_times(pm)
    cuts = np.flatnonzero(np.any(m_cls[1:] != m_cls[:-1], axis=1)) + 1
    for group, (g0, g1) in enumerate(zip([0, *cuts.tolist()], [*cuts.tolist(), len(cs)])):
        m = m_cls[g0][inv.ravel()]
        if m.sum() < L:
            continue  # gbp_cr raises: infeasible for this c
        start, seq, chain_ends, nus, complete = _fill(m, tau_c, tau_p, L, needs[g0])
        for i in range(g0, g1):
            c, need = int(cs[i]), float(needs[i])
            hit = int(np.searchsorted(nus, need, side="left"))  # ν is non-decreasing along the fill
            if hit < len(nus):
                cut, n_placed, reached = hit + 1, int(chain_ends[hit]), True
            else:
                assert complete
                cut, n_placed, reached = len(nus), len(seq), False
            nu = float(nus[cut - 1]) if cut else 0.0
            yield GbpCrOption(
                c,
                (group, cut, reached),
                cut,
                nu * 1000,
                need * 1000,
                _builder(pm, c, m, start, seq, chain_ends, nu, cut, n_placed, need, target_load, "gbp-cr"),
            )


def _fill(m, tau_c, tau_p, L, stop_need):
    """The server sequence of gbp_cr for block counts m (the same float operations): starts, and per chain
    its end in the sequence and the cumulative rate ν after it. Stops once ν ≥ ``stop_need`` (no larger c
    of the group fills further); ``complete`` says the whole sequence was filled."""
    t = tau_c + tau_p * m
    t_tilde = np.where(m > 0, t / np.maximum(m, 1), np.inf)
    order = np.argsort(t_tilde, kind="stable")
    seq = order[m[order] > 0].tolist()
    start = np.zeros(len(m), dtype=np.int64)
    a, T, nu = 1, 0.0, 0.0
    ends, nus = [], []
    ml, tl = m.tolist(), t.tolist()
    complete = True
    for pos, j in enumerate(seq):
        start[j] = min(a, L - ml[j] + 1)
        T += tl[j]
        a = min(a + ml[j] - 1, L) + 1
        if a > L:
            nu += 1.0 / T
            ends.append(pos + 1)
            nus.append(nu)
            a, T = 1, 0.0
            if nu >= stop_need:
                complete = pos + 1 == len(seq)
                break
    return start, seq, np.array(ends, dtype=np.int64), np.array(nus), complete


def _builder(pm, c, m, start, seq, chain_ends, nu, cut, n_placed, need, target_load, method):
    def build() -> Placement:
        placed = np.zeros(len(m), dtype=bool)
        placed[seq[:n_placed]] = True
        bounds = [0, *chain_ends[:cut].tolist()]
        chains = [tuple(seq[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
        return _placement(pm, c, m, start, placed, chains, nu, need, target_load, method)

    return build
