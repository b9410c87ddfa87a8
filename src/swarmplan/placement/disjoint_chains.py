"""SLO-Pack's disjoint-chain design (docs/capacity.md §5.2): pick disjoint chains — each server in at most
one, holding exactly the blocks it processes there, so its cache reservation is its own — by a small MILP
that maximises the fluid rate within the SLO.

Why: the capacity bound's LP (perf.capacity_bound) mixes chains on the same server with different block
ranges, which no contiguous placement realises, while GBP-CR gives every server of a memory class the same
block count (one c for the whole swarm) and so builds only one kind of chain. A swarm whose fast 2-server
chains (35 + 35 blocks) are too few and whose 3-server chains (24 + 23 + 23, more slots per server) are too
slow for the SLO on their own serves most with a *mix* of both on disjoint servers; the MILP finds it.

A chain p of servers j with n_j blocks (Σ n_j = L) run alone on its servers holds ⌊S_j(n_j)/n_j⌋ sessions
on each (docs/model.md §2.3, §14.2), so by Little's law it serves at most μ_p = min_j ⌊S_j(n_j)/n_j⌋ / T̄_p
(T̄_p its mean service time over the request lengths, docs/model.md §3.3). The MILP:

    max Λ  s.t.  Σ_p λ_p = Λ,  0 ≤ λ_p ≤ μ_p z_p,  Σ_{p ∋ j} z_p ≤ 1 (every server j),  z_p ∈ {0, 1},
                 and the SLO row of docs/capacity.md §2.1 (mean metric ≤ limit, or the quantile's share).

Every solution is a placement (servers of one chain laid out consecutively from block 1), so its value is
achievable by a fluid system; waiting under Poisson arrivals is what the simulation adds. The chain pool:
every split of L over 1–3 of the servers the bound's LP uses (the Pareto front of rate vs SLO metric per
server set), plus the bound's own columns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import highspy
import numpy as np

from swarmplan.perf.capacity_bound import BoundResult, Slo, hop_parts, quiet_highs
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for


@dataclass(frozen=True)
class ChainOption:
    """One candidate chain: its servers and block counts, mean service time, the rate μ it sustains alone,
    and its SLO coefficient (mean metric in ms, or the share of requests whose service alone meets a quantile limit)."""

    servers: tuple[int, ...]
    blocks: tuple[int, ...]
    service_ms: float
    rate_per_s: float
    slo_value: float


@dataclass(frozen=True)
class HopTables:
    """Per (length sample s, server j, blocks n): hop service time (ms) and its SLO share; shape (S, J, L+1)."""

    hop: np.ndarray
    slo_part: np.ndarray
    const_ms: np.ndarray  # per sample: the metric's constant part (delays), ms


def hop_tables(pm: PerfModel, slo: Slo, delay_ms: float, lengths: tuple = (), client: int = 0) -> HopTables:
    """Hop times for every length pair in ``lengths`` ((l_in, l_out), …; the nominal lengths when empty), by
    docs/model.md §3.3: hop = [RTT^in + (l_out−1)RTT] + [τ^in + (l_out−1)τ]·n. The SLO share: hop/l_out for a
    mean per-token SLO, the first-token part for TTFT, the hop itself for a response quantile."""
    pairs = list(lengths) or [(pm.input_tokens, pm.output_tokens)]
    hop, part, const = [], [], []
    for l_in, l_out in pairs:
        first, tok = hop_parts(pm, client, int(l_in))
        h = first + (int(l_out) - 1) * tok
        hop.append(h)
        if slo.kind == "per_token":
            part.append(h / int(l_out))
            const.append(delay_ms / int(l_out))
        elif slo.kind == "ttft":
            part.append(first)
            const.append(delay_ms)
        else:
            part.append(h)
            const.append(delay_ms)
    return HopTables(np.array(hop), np.array(part), np.array(const))


def sessions(pm: PerfModel) -> np.ndarray:
    """⌊S_j(n)/n⌋ (docs/model.md §2.3): sessions server j holds when it processes exactly n blocks; 0 where
    n is not placeable. Shape (J, L+1)."""
    n = np.arange(pm.L + 1)[None, :]
    slots = np.floor((pm.memory_gb[:, None] - pm.block_gb * n) / pm.kv_gb + 1e-9)
    ok = (n >= 1) & (n <= pm.max_blocks[:, None]) & (slots >= n)
    return np.where(ok, np.floor(np.maximum(slots, 0) / np.maximum(n, 1)), 0.0)


def evaluate(pm: PerfModel, tables: HopTables, slo: Slo, servers, blocks, sess: np.ndarray) -> ChainOption:
    """The chain's mean service time, its rate alone (Little's law on its bottleneck) and SLO coefficient."""
    T = sum(tables.hop[:, j, k] for j, k in zip(servers, blocks))  # per sample
    cap = min(sess[j, k] for j, k in zip(servers, blocks))
    mean_T = float(np.mean(T))
    if slo.kind == "response":
        value = float(np.mean(T + tables.const_ms <= slo.limit_ms + 1e-9))
    else:
        value = float(np.mean(sum(tables.slo_part[:, j, k] for j, k in zip(servers, blocks)) + tables.const_ms))
    return ChainOption(tuple(servers), tuple(blocks), mean_T, float(cap) / mean_T * 1000.0, value)


def _splits(L: int, allowed: list[np.ndarray]) -> np.ndarray:
    """Every (n_1, …, n_k) with Σ n = L and n_i allowed on server i, as rows of an int array."""
    heads = [np.flatnonzero(a[: L + 1]) for a in allowed[:-1]]
    if heads:
        grid = np.array(list(itertools.product(*heads)), dtype=np.int64).reshape(-1, len(heads))
    else:
        grid = np.zeros((1, 0), np.int64)
    last = L - grid.sum(axis=1)
    ok = (last > 0) & (last < len(allowed[-1]))
    grid, last = grid[ok], last[ok]
    keep = allowed[-1][last]
    return np.column_stack([grid[keep], last[keep]])


def _front(subset, splits: np.ndarray, tables: HopTables, slo: Slo, sess: np.ndarray, per_set: int) -> list[ChainOption]:
    """All splits of one server set at once; the ``per_set`` evenly spaced points of the Pareto front of
    (rate ↑, SLO value better)."""
    T = sum(tables.hop[:, j, splits[:, i]] for i, j in enumerate(subset))  # (samples, splits)
    cap = np.min(np.stack([sess[j, splits[:, i]] for i, j in enumerate(subset)]), axis=0)
    mean_T = T.mean(axis=0)
    rate = cap / mean_T * 1000.0
    if slo.kind == "response":
        value = np.mean(T + tables.const_ms[:, None] <= slo.limit_ms + 1e-9, axis=0)
        sign = -1.0
    else:
        value = np.mean(sum(tables.slo_part[:, j, splits[:, i]] for i, j in enumerate(subset)) + tables.const_ms[:, None], axis=0)
        sign = 1.0
    front, best = [], np.inf
    for p in np.lexsort((mean_T, -rate)):
        if rate[p] > 0 and sign * value[p] < best:
            front.append(p)
            best = sign * value[p]
    if len(front) > per_set:
        front = [front[i] for i in np.unique(np.linspace(0, len(front) - 1, per_set).round().astype(int))]
    return [
        ChainOption(tuple(subset), tuple(int(x) for x in splits[p]), float(mean_T[p]), float(rate[p]), float(value[p]))
        for p in front
    ]


def chain_pool(
    pm: PerfModel, slo: Slo, tables: HopTables, bound: BoundResult, max_servers: int = 3, max_eligible: int = 14, per_set: int = 6
) -> list[ChainOption]:
    """Candidate chains: the bound's columns, and every split over 1..max_servers of the servers the bound's
    LP uses most (at most ``max_eligible``), keeping per server set ``per_set`` points of the Pareto front of
    (rate ↑, SLO metric ↓ / share ↑)."""
    sess = sessions(pm)
    use: dict[int, float] = {}
    for ch in bound.chains:
        for j, n in zip(ch["servers"], ch["blocks"]):
            use[j] = use.get(j, 0.0) + ch["rate_per_s"] * ch["service_ms"] * n
    eligible = sorted(sorted(use, key=lambda j: (-use[j], j))[:max_eligible])
    pool: dict[tuple, ChainOption] = {}
    for ch in bound.chains:
        opt = evaluate(pm, tables, slo, ch["servers"], ch["blocks"], sess)
        if opt.rate_per_s > 0:
            pool[opt.servers, opt.blocks] = opt
    for k in range(1, max_servers + 1):
        for subset in itertools.combinations(eligible, k):
            splits = _splits(pm.L, [sess[j] > 0 for j in subset])
            if len(splits):
                for o in _front(subset, splits, tables, slo, sess, per_set):
                    pool[o.servers, o.blocks] = o
    return [pool[k] for k in sorted(pool)]


@dataclass(frozen=True)
class Design:
    chains: list[ChainOption]
    rates_per_s: list[float]
    fluid_rate_per_s: float


def best_disjoint(pool: list[ChainOption], slo: Slo, n_servers: int, max_nodes: int = 300) -> Design | None:
    """The MILP above on ``pool`` (HiGHS, a node limit rather than a time limit so the result is
    deterministic); None when no chain meets the SLO."""
    if not pool:
        return None
    h = quiet_highs()
    h.setOptionValue("mip_max_nodes", max_nodes)
    h.setOptionValue("mip_rel_gap", 1e-4)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    P = len(pool)
    inf = highspy.kHighsInf
    # columns: λ_0..λ_{P-1}, z_0..z_{P-1}
    for _ in range(P):
        h.addVar(0.0, inf)
    for _ in range(P):
        h.addVar(0.0, 1.0)
    h.changeColsCost(P, np.arange(P, dtype=np.int32), np.ones(P))
    h.changeColsIntegrality(P, np.arange(P, 2 * P, dtype=np.int32), np.full(P, highspy.HighsVarType.kInteger))
    for p, o in enumerate(pool):  # λ_p − μ_p z_p ≤ 0
        h.addRow(-inf, 0.0, 2, np.array([p, P + p], dtype=np.int32), np.array([1.0, -o.rate_per_s]))
    for j in range(n_servers):  # each server in at most one chain
        idx = [P + p for p, o in enumerate(pool) if j in o.servers]
        if idx:
            h.addRow(-inf, 1.0, len(idx), np.array(idx, dtype=np.int32), np.ones(len(idx)))
    if slo.kind == "response":  # Σ λ_p (share_p − q) ≥ 0
        coef = np.array([o.slo_value - slo.quantile for o in pool])
        h.addRow(0.0, inf, P, np.arange(P, dtype=np.int32), coef)
    else:  # Σ λ_p (metric_p − limit) ≤ 0
        coef = np.array([o.slo_value - slo.limit_ms for o in pool])
        h.addRow(-inf, 0.0, P, np.arange(P, dtype=np.int32), coef)
    h.run()
    sol = h.getSolution()
    if not sol.value_valid:
        return None
    x = np.asarray(sol.col_value)
    chosen = [p for p in range(P) if x[P + p] > 0.5 and x[p] > 1e-9]
    if not chosen:
        return None
    return Design([pool[p] for p in chosen], [float(x[p]) for p in chosen], float(sum(x[p] for p in chosen)))


def design_placement(pm: PerfModel, design: Design, method: str = "slo-pack") -> Placement:
    """Each chosen chain's servers laid out consecutively from block 1 (larger block counts first), every
    server holding exactly the blocks it processes; servers in no chain hold nothing."""
    start = np.zeros(pm.n_servers, dtype=np.int64)
    m = np.zeros(pm.n_servers, dtype=np.int64)
    order: list[int] = []
    for ch in sorted(design.chains, key=lambda c: (c.service_ms, c.servers)):
        a = 1
        for j, n in sorted(zip(ch.servers, ch.blocks), key=lambda t: (-t[1], t[0])):
            start[j], m[j] = a, n
            a += n
            order.append(j)
    return Placement(
        method=method,
        start=start,
        n_blocks=m,
        cache_slots=slots_for(pm, m, "proposed"),
        memory_model="proposed",
        order=tuple(order),
        info={"design": "disjoint chains", "fluid_rate_per_s": design.fluid_rate_per_s},
    )
