"""CG-BP: conservative greedy block placement (docs/model.md §5; Sun et al. 2025, Algorithm 1)."""

from __future__ import annotations

import numpy as np

from swarmplan.errors import NoSolutionError, SwarmplanError
from swarmplan.perf import memory
from swarmplan.perf.concurrency import cgbp_bound_ms, cgbp_num_blocks
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for
from swarmplan.placement.windows import lexicographic_min_window, max_sum_window_touching, take_windows


def cg_bp(pm: PerfModel, R: int, clamp: bool = True, method: str = "cg-bp") -> Placement:
    """Place blocks so that every block serves R concurrent requests, fast servers first.

    Raises SwarmplanError when the servers cannot give every block capacity R (the paper's infeasibility).
    """
    if R < 1:
        raise SwarmplanError("R", f"R = {R} is not a positive integer", "give R ≥ 1")
    L, N = pm.L, pm.n_servers
    m = cgbp_num_blocks(pm.memory_gb, pm.block_gb, pm.kv_gb, R, L, pm.max_blocks if clamp else None)
    usable = m > 0
    if not usable.any():
        raise NoSolutionError("R", f"no server can hold a block with cache for R = {R} requests", "lower R (--R)")
    # docs/model.md §5.2 step 2 — worst-client per-token cost, amortised per block.
    t = np.where(usable, (pm.rtt_ms + pm.tau_ms * m).max(axis=0), np.inf)
    t_tilde = np.where(usable, t / np.maximum(m, 1), np.inf)
    t0 = t_tilde[usable].max() + 1.0
    cap = memory.session_capacity_proposed(pm.memory_gb, m, pm.block_gb, pm.kv_gb)
    C = np.zeros(L, dtype=np.int64)
    T = np.full(L, R * t0)
    order = [int(j) for j in np.argsort(t_tilde, kind="stable") if usable[j]]
    start = np.zeros(N, dtype=np.int64)
    K = None
    for i, j in enumerate(order):
        mj = int(m[j])
        under = C < R
        if under.any():
            s = max_sum_window_touching(T, mj, under)
        else:
            s = lexicographic_min_window(C.astype(float), mj)
        w = slice(s, s + mj)
        T[w] -= (t0 - t_tilde[j]) * np.minimum(np.maximum(R - C[w], 0), cap[j])
        C[w] += cap[j]
        start[j] = s + 1
        if (C >= R).all():
            K = i + 1
            break
    if K is not None:
        # Every block has C ≥ R and C only grows, so step (a) never applies again and T (read only by step a)
        # would only lose (t0 − t̃_j)·0: the other servers run step (b) on C alone (C's integers as floats).
        Cf, rest = C.astype(float), np.array(order[K:], dtype=np.int64)
        starts0 = np.zeros(N, dtype=np.int64)
        take_windows(Cf, rest, m, cap.astype(float), starts0)
        start[rest] = starts0[rest] + 1
        C = Cf.astype(np.int64)
    if K is None:
        short = np.flatnonzero(C < R) + 1
        raise NoSolutionError(
            "R",
            f"CG-BP cannot give blocks {short[0]}..{short[-1]} capacity for R = {R} concurrent requests",
            "lower R (--R), add servers or memory",
        )
    o = np.array(order)
    U = cgbp_bound_ms(t[o], m[o], float(pm.tau_ms[o[K - 1]]), K, L)
    m_used = np.where(usable, m, 0)
    return Placement(
        method=method,
        start=np.where(usable, start, 0),
        n_blocks=m_used,
        cache_slots=slots_for(pm, m_used, "proposed"),
        memory_model="proposed",
        R=R,
        bound_ms_per_token=U,
        order=tuple(order),
        info={"K": K, "session_capacity": cap.tolist(), "t_ms": t.tolist()},
    )
