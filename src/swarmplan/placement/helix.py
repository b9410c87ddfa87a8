"""Helix placement (Mei et al., ASPLOS '25 §4; related-work.md §2.2) on swarmplan's model: a MILP that
maximises the flow of requests from the coordinator through contiguous layer ranges to the coordinator
(docs/capacity.md §3.1).

Helix's throughput T_i(k) of a node holding k layers is profiled tokens/s capped by its KV room. swarmplan's
model has no compute contention (docs/model.md §3.5): what limits a node is the sessions its memory holds,
so T_i(k) = ⌊S_i(k)/k⌋ sessions (S_i(k) = ⌊(M_i − s_m k)/s_c⌋), times the same 1/T̄ for every node (a
constant that does not change the optimum and is left out). Helix's rule that weights take at most half of
a GPU's memory bounds k. Its edges have bandwidth capacities; swarmplan's hub-spoke links have none, so edge
flows are capped only by the edge switch. Latency appears nowhere, as in Helix. Strict mode (an edge
i → j exists only if i's range ends where j's starts), partial inference off, as in Helix's artifact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.optim.highs import Milp
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for

WEIGHT_SHARE = 0.5  # Helix: at most half of a GPU's memory for weights


@dataclass(frozen=True)
class HelixOptions:
    time_limit_s: float = 10.0
    rel_gap: float = 1e-3


def max_layers(pm: PerfModel) -> np.ndarray:
    """Helix's per-node layer limit: weights in at most half the memory (and the GPU's clamp)."""
    k = np.floor(WEIGHT_SHARE * pm.memory_gb / pm.block_gb + 1e-9).astype(np.int64)
    return np.minimum(np.minimum(k, pm.max_blocks), pm.L)


def node_sessions(pm: PerfModel) -> np.ndarray:
    """T_i(k) in sessions: ⌊S_i(k)/k⌋ for k = 0..L, shape (J, L + 1), 0 where k is not allowed."""
    k = np.arange(pm.L + 1)[None, :]
    slots = np.floor((pm.memory_gb[:, None] - pm.block_gb * k) / pm.kv_gb + 1e-9)
    sessions = np.floor(slots / np.maximum(k, 1) + 1e-9)
    ok = (k >= 1) & (k <= max_layers(pm)[:, None]) & (sessions >= 1)
    return np.where(ok, sessions, 0).astype(np.int64)


def _greedy_pipelines(pm: PerfModel, cap: np.ndarray, kmax: np.ndarray):
    """Warm start (Helix starts its solver from a heuristic layout): nodes by decreasing layer limit fill
    disjoint strict pipelines 0..L, each node taking as many layers as it may (the last one only what is
    left). Returns ([(start 0-based, k)] per node or None, [(pipeline nodes, its flow)])."""
    L = pm.L
    order = sorted(range(pm.n_servers), key=lambda i: (-int(kmax[i]), i))
    layout: list = [None] * pm.n_servers
    pipes, current, at = [], [], 0
    for i in order:
        if kmax[i] < 1 or cap[i, 1] < 1:
            continue
        k = int(min(kmax[i], L - at))
        while k > 0 and cap[i, k] < 1:
            k -= 1
        if k == 0:
            continue
        layout[i] = (at, k)
        current.append(i)
        at += k
        if at == L:
            pipes.append((current, float(min(cap[j, layout[j][1]] for j in current))))
            current, at = [], 0
    return layout, pipes


def _greedy_layout(pm: PerfModel, cap: np.ndarray, kmax: np.ndarray):
    """Every node's (start, k) for the warm start; nodes outside complete pipelines hold their first
    allowed k at layer 0 and carry no flow."""
    layout, pipes = _greedy_pipelines(pm, cap, kmax)
    in_pipe = {i for p, _ in pipes for i in p}
    out = []
    for i in range(pm.n_servers):
        if i in in_pipe:
            out.append(layout[i])
        else:
            ks = [k for k in range(1, pm.L + 1) if cap[i, k] > 0]
            out.append((0, ks[0]) if ks else (0, 0))
    return out


_CACHE: dict[tuple, Placement] = {}


def helix_placement_cached(pm: PerfModel, options: HelixOptions = HelixOptions()) -> Placement:
    """Helix's placement depends only on the nodes' throughput table and L (not on the rate or latency):
    solved once per distinct table (capacity searches rebuild methods at every rate)."""
    key = (node_sessions(pm).tobytes(), pm.n_servers, pm.L, options)
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = helix_placement(pm, options)
    hit = _CACHE[key]  # the layout is the table's; the slots are this swarm's
    return dataclasses.replace(hit, cache_slots=slots_for(pm, hit.n_blocks, "proposed"))


def helix_placement(pm: PerfModel, options: HelixOptions = HelixOptions()) -> Placement:
    J, L = pm.n_servers, pm.L
    cap = node_sessions(pm)
    kmax = max_layers(pm)
    if int(kmax.sum()) < L:
        raise SwarmplanError(
            "servers",
            f"with half of each GPU's memory for weights (Helix's rule) the servers hold only {int(kmax.sum())} of {L} blocks",
            "add servers or use another method",
        )
    milp = Milp()
    s = milp.add_vars(J, lb=0, ub=L - 1, integer=True)  # first layer, 0-based
    b = {}  # (i, k) -> column: node i holds exactly k layers
    for i in range(J):
        for k in range(1, L + 1):
            if cap[i, k] > 0:
                b[i, k] = int(milp.add_vars(1, lb=0, ub=1, integer=True)[0])
    f_src = milp.add_vars(J, cost=-1.0)  # maximise Σ flow out of the coordinator
    f_snk = milp.add_vars(J)
    d_src = milp.add_vars(J, lb=0, ub=1, integer=True)
    d_snk = milp.add_vars(J, lb=0, ub=1, integer=True)
    pairs = [(i, j) for i in range(J) for j in range(J) if i != j]
    f = {p: int(c) for p, c in zip(pairs, milp.add_vars(len(pairs)))}
    d = {p: int(c) for p, c in zip(pairs, milp.add_vars(len(pairs), lb=0, ub=1, integer=True))}
    for i in range(J):
        ks = [k for k in range(1, L + 1) if (i, k) in b]
        if not ks:
            milp.add_row([int(f_src[i]), int(f_snk[i])], [1.0, 1.0], ub=0.0)  # a node that can hold nothing
            continue
        milp.add_row([b[i, k] for k in ks], [1.0] * len(ks), lb=1.0, ub=1.0)
        e_cols, e_vals = [int(s[i])] + [b[i, k] for k in ks], [1.0] + [float(k) for k in ks]  # e_i = s_i + Σ k b
        milp.add_row(e_cols, e_vals, ub=float(L))
        inflow = [int(f_src[i])] + [f[u, i] for u in range(J) if u != i]
        outflow = [int(f_snk[i])] + [f[i, v] for v in range(J) if v != i]
        milp.add_row(inflow + outflow, [1.0] * len(inflow) + [-1.0] * len(outflow), lb=0.0, ub=0.0)
        milp.add_row(inflow + [b[i, k] for k in ks], [1.0] * len(inflow) + [-float(cap[i, k]) for k in ks], ub=0.0)
        top = float(cap[i].max())  # big-M: no more than the node's largest throughput
        milp.add_row([int(f_src[i]), int(d_src[i])], [1.0, -top], ub=0.0)
        milp.add_row([int(f_snk[i]), int(d_snk[i])], [1.0, -top], ub=0.0)
        milp.add_row([int(s[i]), int(d_src[i])], [1.0, float(L)], ub=float(L))  # s_i ≤ L (1 − d_src)
        milp.add_row([int(d_snk[i])] + e_cols, [float(L)] + [-v for v in e_vals], ub=0.0)  # L d_snk ≤ e_i
    for i, j in pairs:
        if not any((i, k) in b for k in range(1, L + 1)) or not any((j, k) in b for k in range(1, L + 1)):
            milp.add_row([f[i, j]], [1.0], ub=0.0)
            continue
        milp.add_row([f[i, j], d[i, j]], [1.0, -float(min(cap[i].max(), cap[j].max()))], ub=0.0)
        # strict mode: d_ij ⇒ e_i = s_j, i.e. L d ≤ L + (s_j − e_i) and L d ≤ L − (s_j − e_i)
        ki = [k for k in range(1, L + 1) if (i, k) in b]
        cols = [d[i, j], int(s[j]), int(s[i])] + [b[i, k] for k in ki]
        milp.add_row(cols, [float(L), -1.0, 1.0] + [float(k) for k in ki], ub=float(L))
        milp.add_row(cols, [float(L), 1.0, -1.0] + [-float(k) for k in ki], ub=float(L))
    # Helix's compute bound as a cut: every unit of flow crosses all L layers and node i supplies at most
    # k·T_i(k) layer-sessions, so L·Σ f_src ≤ Σ_ik k·T_i(k)·b_ik (valid; it only tightens the LP relaxation).
    cut_cols = [int(c) for c in f_src] + list(b.values())
    cut_vals = [float(L)] * J + [-float(k * cap[i, k]) for (i, k) in b]
    milp.add_row(cut_cols, cut_vals, ub=0.0)
    x0 = np.zeros(milp.n_cols)
    for i, (si, k) in enumerate(_greedy_layout(pm, cap, kmax)):
        x0[int(s[i])] = si
        x0[b[i, k]] = 1.0
    for pipe, flow in _greedy_pipelines(pm, cap, kmax)[1]:
        x0[int(f_src[pipe[0]])] = flow
        x0[int(d_src[pipe[0]])] = 1.0
        x0[int(f_snk[pipe[-1]])] = flow
        x0[int(d_snk[pipe[-1]])] = 1.0
        for i, j in zip(pipe, pipe[1:]):
            x0[f[i, j]] = flow
            x0[d[i, j]] = 1.0
    sol = milp.solve(time_limit=options.time_limit_s, rel_gap=options.rel_gap, start=x0)
    if sol.x is None:
        raise SwarmplanError(
            "placement", f"Helix's MILP found no placement within {options.time_limit_s:g} s", "raise the time limit"
        )
    x = sol.x
    start = np.zeros(J, dtype=np.int64)
    m = np.zeros(J, dtype=np.int64)
    for (i, k), col in b.items():
        if x[col] > 0.5:
            m[i] = k
            start[i] = int(round(x[int(s[i])])) + 1  # 1-based
    flow = float(-sol.objective) if sol.objective is not None else 0.0
    return Placement(
        method="helix",
        start=np.where(m > 0, start, 0),
        n_blocks=m,
        cache_slots=slots_for(pm, m, "proposed"),
        memory_model="proposed",
        info={"milp_sessions": flow, "milp_status": sol.status, "milp_gap": sol.gap, "milp_seconds": sol.seconds},
    )


def _helix(ctx, o: HelixOptions) -> Placement:
    return helix_placement_cached(ctx.pm, o)


from swarmplan.placement.registry import PlacementMethod, register_placement

register_placement(
    PlacementMethod(
        "helix",
        "proposed",
        "Helix: MILP maximising session throughput through strict pipelines, weights in half the memory (docs/capacity.md §3.1)",
        HelixOptions,
        _helix,
    )
)
