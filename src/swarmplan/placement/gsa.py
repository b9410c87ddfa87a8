"""GSA: greedy stage assignment for the special case of equal blocks per server (docs/model.md §7)."""

from __future__ import annotations

import math

import numpy as np

from swarmplan.errors import NoSolutionError
from swarmplan.perf import memory
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for


def gsa(pm: PerfModel, R: int, blocks_per_server: int | None = None, method: str = "gsa") -> Placement:
    """Every server holds m blocks; the model is cut into ⌈L/m⌉ stages and servers, fastest first, join
    the stage with the most remaining (amortised) time while a stage is below R, else the least capacity."""
    L = pm.L
    if blocks_per_server is None:
        # docs/model.md §7 — m = ⌊min_j M_j / s_m⌋, within L and every GPU's clamp.
        m = int(min(math.floor(pm.memory_gb.min() / pm.block_gb + 1e-9), L, int(pm.max_blocks.min())))
    else:
        m = int(blocks_per_server)
    if m < 1:
        raise NoSolutionError("blocks_per_server", "the smallest server cannot hold one block", "use --method cg-bp")
    n_stages = math.ceil(L / m)
    stage_len = np.array([m] * (n_stages - 1) + [L - (n_stages - 1) * m])
    cap = memory.session_capacity_proposed(pm.memory_gb, np.full(pm.n_servers, m), pm.block_gb, pm.kv_gb)
    time = pm.rtt_ms.max(axis=0) + pm.tau_ms * m
    t0 = 1.0 + time.max()
    C = np.zeros(n_stages, dtype=np.int64)
    T = np.full(n_stages, t0 * R)
    stage = np.zeros(pm.n_servers, dtype=np.int64)
    order = np.argsort(time, kind="stable")
    for j in order.tolist():
        under = C < R
        k = int(np.argmax(np.where(under, T, -np.inf))) if under.any() else int(np.argmin(C))
        T[k] -= (t0 - time[j]) * min(max(0, R - C[k]), cap[j])
        C[k] += cap[j]
        stage[j] = k
    empty = [k + 1 for k in range(n_stages) if not (stage == k).any()]
    if empty:
        raise NoSolutionError(
            "servers",
            f"GSA leaves stage(s) {empty} without a server ({n_stages} stages of {m} blocks)",
            "add servers or use --method cg-bp",
        )
    start = stage * m + 1
    n_blocks = stage_len[stage]
    return Placement(
        method=method,
        start=start,
        n_blocks=n_blocks,
        cache_slots=slots_for(pm, n_blocks, "proposed"),
        memory_model="proposed",
        R=R,
        bound_ms_per_token=float(T.sum() / R) if (C >= R).all() else None,
        order=tuple(order.tolist()),
        info={"blocks_per_server": m, "stages": n_stages, "stage_capacity": C.tolist()},
    )
