"""PETALS' placement: automatic number of blocks, lowest-throughput-window selection as servers join,
and optional rebalancing (docs/model.md §4; petals block_selection.py)."""

from __future__ import annotations

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.perf.petals_rules import petals_num_blocks, petals_throughput
from swarmplan.placement.types import MemoryModel, Placement, slots_for
from swarmplan.placement.windows import lexicographic_min_window, take_windows

EPS = 1e-3  # block_selection.py's eps


def server_throughputs(pm: PerfModel, n_blocks: np.ndarray) -> np.ndarray:
    sw = pm.swarm
    # docs/model.md §4.2 — unknown probe numbers: PETALS' 100 Mbit/s network default, forward from the fit.
    net = np.where(np.isnan(sw.network_rps), 1e8 / ((sw.model.d_model or 14336) * 16), sw.network_rps)
    prefill_1024 = np.maximum(pm.tau_in_for(1024), 1e-9)
    fwd = np.where(np.isnan(sw.forward_rps), 1000.0 * 1024 / prefill_1024, sw.forward_rps)
    return np.where(n_blocks > 0, petals_throughput(fwd, net, np.maximum(n_blocks, 1)), 0.0)


def choose_best_blocks(throughput_per_block: np.ndarray, n: int) -> int:
    """docs/model.md §4.3 — 0-based start of the window PETALS picks for a server of ``n`` blocks."""
    return lexicographic_min_window(throughput_per_block, n)


def should_choose_other_blocks(
    j: int, start0: np.ndarray, m: np.ndarray, thr: np.ndarray, L: int, balance_quality: float, rng: np.random.Generator
) -> bool:
    """docs/model.md §4.4 — PETALS' rebalancing test for server j (0-based starts), simulated greedily."""
    if balance_quality > 1.0:
        return True
    T = _totals(start0, m, thr, L)
    t0 = T.min()
    T[start0[j] : start0[j] + m[j]] -= thr[j] * (1 + EPS)
    if t0 > EPS and T.min() <= 0:
        return False
    new = choose_best_blocks(T, m[j])
    if new == start0[j]:
        return False
    T[start0[j] : start0[j] + m[j]] += thr[j] * EPS
    starts = start0.copy()
    starts[j] = new
    T[new : new + m[j]] += thr[j]
    active = [i for i in range(len(m)) if m[i] > 0]
    moved = True
    while moved:
        moved = False
        for i in rng.permutation(active).tolist():
            T[starts[i] : starts[i] + m[i]] -= thr[i] * (1 + EPS)
            n = choose_best_blocks(T, m[i])
            T[starts[i] : starts[i] + m[i]] += thr[i] * EPS
            if n != starts[i]:
                starts[i] = n
                moved = True
            T[starts[i] : starts[i] + m[i]] += thr[i]
    t1 = T.min()
    if t1 < t0 or t1 < EPS:
        return False
    return t0 / t1 < balance_quality - EPS


def _totals(start0, m, thr, L) -> np.ndarray:
    """Per-block throughput sums, added in server order every time (PETALS' compute_throughputs sums spans in
    peer-id order so that one set of servers always gives the same floats)."""
    T = np.zeros(L)
    for s, n, t in zip(start0.tolist(), m.tolist(), thr.tolist()):
        if n > 0:
            T[s : s + n] += t
    return T


def rechoose_blocks(j: int, start0: np.ndarray, m: np.ndarray, thr: np.ndarray, L: int) -> int:
    """docs/model.md §4.4 — where server j goes after leaving to rebalance: the best window over the *fresh* sum
    of the other servers' throughputs, as PETALS' choose_blocks reads them from the DHT (block_selection.py).
    Subtracting j from a running total instead leaves rounding error (0.1 + 0.2 − 0.2 ≠ 0.1) that can move a
    server PETALS would keep."""
    others = m.copy()
    others[j] = 0
    return choose_best_blocks(_totals(start0, others, thr, L), int(m[j]))


def petals_placement(
    pm: PerfModel,
    order=None,
    rng: np.random.Generator | None = None,
    n_blocks=None,
    rebalance: bool = False,
    balance_quality: float = 0.75,
    max_rounds: int = 20,
    memory_model: MemoryModel = "petals",
    method: str = "petals",
) -> Placement:
    """Servers join one by one (``order``, else the scenario's placement.petals_join_order, else a seeded random
    permutation) and take PETALS' window.

    ``n_blocks`` overrides PETALS' automatic count (the "Opt Num" baseline uses CG-BP's).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    L = pm.L
    if n_blocks is None:
        m = petals_num_blocks(pm.memory_gb, pm.block_gb, pm.petals_cache_gb, pm.autograd_gb, L, pm.max_blocks)
    else:
        m = np.asarray(n_blocks, dtype=np.int64)
    if order is None and pm.swarm.petals_join_order is not None:  # the scenario states it
        order = pm.swarm.petals_join_order
    join = list(order) if order is not None else rng.permutation(pm.n_servers).tolist()
    thr = server_throughputs(pm, m)
    T = np.zeros(L)
    start0 = np.zeros(pm.n_servers, dtype=np.int64)
    take_windows(T, join, m, thr, start0)  # in join order: choose_best_blocks(T, m_j), then T += thr_j there
    moves = 0
    if rebalance:
        for _ in range(max_rounds):
            moved = False
            for j in rng.permutation(pm.n_servers).tolist():
                if m[j] > 0 and should_choose_other_blocks(j, start0, m, thr, L, balance_quality, rng):
                    new = rechoose_blocks(j, start0, m, thr, L)
                    moved |= new != start0[j]
                    moves += int(new != start0[j])
                    start0[j] = new
            if not moved:
                break
        T = _totals(start0, m, thr, L)
    start = np.where(m > 0, start0 + 1, 0)
    covered = T > 0
    return Placement(
        method=method,
        start=start,
        n_blocks=m,
        cache_slots=slots_for(pm, m, memory_model),
        memory_model=memory_model,
        order=tuple(join),
        info={
            "throughput_tokens_per_s": thr.tolist(),
            "min_block_throughput": float(T.min()),
            "covers_all_blocks": bool(covered.all()),
            "rebalancing_moves": moves,
        },
    )
