"""A tighter capacity upper bound over placements that exist: every server holds one contiguous block range
(docs/capacity.md §2.5).

The chain LP of ``perf.capacity_bound`` prices a session of n blocks on server j at n / S_j(n), whatever
else j does. A real server holds one range [a_j, e_j] and has S_j(e_j − a_j + 1) slots for every chain
through it, so the LP may let a server act as the first stage of one chain and the second of another
(blocks 1–24 and 25–47) at the price of 24 blocks each — which needs 47 blocks of memory in reality.

Here chains carry positions: a hop (j, b, n) processes blocks b+1 … b+n on j. A branch-and-bound node
restricts each server's range by a box a_j ∈ [alo_j, ahi_j], e_j ∈ [elo_j, ehi_j] (1-based). A hop is
possible only if alo_j ≤ b+1 and b+n ≤ ehi_j, and then every range in the box that contains it spans at
least σ = max(b+n, elo_j) − min(b+1, ahi_j) + 1 blocks (hops of the same chain on j are merged first), so
S_j(range) ≤ S_j(σ) and Little's law on j gives

    Σ_p λ_p T_p n_pj / S_j(σ_pj) ≤ 1            for every server j             (as §2.1, with σ ≥ n)

— a relaxation of every placement in the box. Column generation prices positioned chains by a DP over
(block boundary, time cell) (repeated servers are allowed there: a relaxation, so the Lagrangian bound of
§2.2 stays valid). Branching on a server whose used hops span more than their prices assumed splits the
box four ways (a_j ≤ s or ≥ s+1) × (e_j ≥ t or ≤ t−1), s, t the first and last block of its used hops: a
partition of every placement (a server holding nothing lies in every child and no column uses it). A node
whose used hops agree with one range per server is a placement with its fluid rate (an incumbent). The
bound reported is max(incumbent, the largest bound of an open node), and never above the chain LP's.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import highspy
import numpy as np

from swarmplan.perf.capacity_bound import (
    INF,
    LengthClass,
    Slo,
    _class_times,
    capacity_upper_bound,
    length_classes,
    quiet_highs,
)
from swarmplan.perf.model import PerfModel

Hop = tuple[int, int, int]  # (server, blocks before the hop, blocks processed)


@dataclass(frozen=True)
class Box:
    """Per server: a_j ∈ [alo, ahi], e_j ∈ [elo, ehi] (1-based, inclusive)."""

    alo: tuple[int, ...]
    ahi: tuple[int, ...]
    elo: tuple[int, ...]
    ehi: tuple[int, ...]

    @classmethod
    def full(cls, J: int, L: int) -> Box:
        return cls((1,) * J, (L,) * J, (1,) * J, (L,) * J)

    def with_(self, j: int, **kw) -> Box:
        d = {k: list(getattr(self, k)) for k in ("alo", "ahi", "elo", "ehi")}
        for k, v in kw.items():
            d[k][j] = v
        return Box(*(tuple(d[k]) for k in ("alo", "ahi", "elo", "ehi")))


def slots_table(pm: PerfModel) -> np.ndarray:
    """S_j(m) = ⌊(M_j − s_m m)/s_c⌋ (docs/model.md §2.3), 0 where j cannot hold m blocks (clamp, or fewer
    slots than blocks). Shape (J, L+1)."""
    m = np.arange(pm.L + 1)[None, :]
    s = np.floor((pm.memory_gb[:, None] - pm.block_gb * m) / pm.kv_gb + 1e-9)
    ok = (m >= 1) & (m <= pm.max_blocks[:, None]) & (s >= m)
    return np.where(ok, s, 0.0)


def span_of(box: Box, j: int, first: int, last: int) -> int:
    """Blocks any range in the box that holds first..last must span."""
    return max(last, box.elo[j]) - min(first, box.ahi[j]) + 1


def hop_weights(box: Box, slots: np.ndarray, L: int) -> np.ndarray:
    """w[j, b, n] = n / S_j(σ) for a feasible hop (j, b, n), inf otherwise. Shape (J, L, L+1)."""
    J = slots.shape[0]
    w = np.full((J, L, L + 1), np.inf)
    b = np.arange(L)[:, None]
    n = np.arange(L + 1)[None, :]
    first, last = b + 1, b + n
    for j in range(J):
        ok = (n >= 1) & (last <= L) & (box.alo[j] <= first) & (last <= box.ehi[j])
        span = np.maximum(last, box.elo[j]) - np.minimum(first, box.ahi[j]) + 1
        span = np.clip(span, 0, L)
        s = slots[j][span]
        ok &= s > 0
        w[j] = np.where(ok, n / np.where(s > 0, s, 1.0), np.inf)
    return w


def column_shares(box: Box, slots: np.ndarray, hops: list[Hop]) -> dict[int, float] | None:
    """Σ n / S_j(σ) per server of a positioned chain (hops of one server merged), None if impossible here."""
    per: dict[int, list[Hop]] = {}
    for h in hops:
        per.setdefault(h[0], []).append(h)
    out = {}
    for j, hs in per.items():
        first, last = min(b + 1 for _, b, _ in hs), max(b + n for _, b, n in hs)
        if any(box.alo[j] > b + 1 or b + n > box.ehi[j] for _, b, n in hs):
            return None
        span = span_of(box, j, first, last)
        if span > slots.shape[1] - 1 or slots[j, span] <= 0:
            return None
        out[j] = sum(n for _, _, n in hs) / slots[j, span]
    return out


class _PositionalGrid:
    """DP over (servers used, block boundary, chain time rounded down to a grid): the least price A of a
    positioned chain ending at L in every time cell (as capacity_bound._TimeGrid, with positions). The
    ``tracked`` servers are used at most once (a bit each in the state); others may recur, which only
    relaxes the DP (the column built from a path prices every server exactly)."""

    def __init__(self, hold: np.ndarray, L: int, cap_ms: float, cells: int, tracked: tuple[int, ...] = ()):
        self.L, self.U = L, cells
        self.delta = cap_ms / cells
        self.cap = cap_ms
        self.hold = hold
        self.units = np.where(np.isfinite(hold), np.floor(hold / self.delta), self.U + 1).astype(np.int64)
        self.bit = {j: 1 << i for i, j in enumerate(tracked)}
        self.M = 1 << len(tracked)
        masks = np.arange(self.M)
        self.without = {j: masks[(masks & b) == 0] for j, b in self.bit.items()}

    def _run(self, a: np.ndarray, units: np.ndarray, U: int):
        L, J, M = self.L, a.shape[0], self.M
        best = np.full((M, L + 1, U + 1), np.inf)
        best[0, 0, 0] = 0.0
        cj = np.full((M, L + 1, U + 1), -1, dtype=np.int64)
        cn = np.zeros((M, L + 1, U + 1), dtype=np.int64)
        all_masks = np.arange(M)
        for b in range(L):
            layer = best[:, b, :]
            if not np.isfinite(layer).any():
                continue
            for j in range(J):
                ns = np.flatnonzero(np.isfinite(a[j, b]))
                if not len(ns):
                    continue
                if j in self.bit:
                    src = self.without[j]
                    dst = src | self.bit[j]
                else:
                    src = dst = all_masks
                base = layer[src]
                live = np.isfinite(base).any(axis=1)
                if not live.any():
                    continue
                src, dst, base = src[live], dst[live], base[live]
                for n in ns:
                    u = int(units[j, n])
                    if u > U:
                        continue
                    cand = base[:, : U + 1 - u] + a[j, b, n]
                    cur = best[dst, b + n, u:]
                    better = cand < cur
                    if better.any():
                        best[dst, b + n, u:] = np.where(better, cand, cur)
                        cj[dst, b + n, u:] = np.where(better, j, cj[dst, b + n, u:])
                        cn[dst, b + n, u:] = np.where(better, n, cn[dst, b + n, u:])
        return best, cj, cn

    def solve(self, a: np.ndarray):
        """a[j, b, n]: the price of hop (j, b, n) (inf = impossible). Returns (cell times, least A per cell)."""
        self.best, self.cj, self.cn = self._run(a, self.units, self.U)
        last = self.best[:, self.L, :]
        self.mask = np.argmin(last, axis=0)
        return np.arange(self.U + 1) * self.delta, last.min(axis=0)

    def _trace(self, cj, cn, units, mask: int, u: int) -> list[Hop]:
        hops, b = [], self.L
        while b > 0:
            j, n = int(cj[mask, b, u]), int(cn[mask, b, u])
            if j < 0 or n <= 0:
                return []
            hops.append((j, b - n, n))
            b, u = b - n, u - int(units[j, n])
            mask ^= self.bit.get(j, 0)
        return hops[::-1] if (u == 0 and mask == 0) else []

    def path(self, cell: int) -> list[Hop]:
        if not np.isfinite(self.best[:, self.L, cell]).any():
            return []
        return self._trace(self.cj, self.cn, self.units, int(self.mask[cell]), cell)

    def floor_time(self, hops: list[Hop]) -> float:
        return float(sum(self.units[j, n] for j, _, n in hops)) * self.delta

    def least_price(self, a: np.ndarray) -> tuple[float, list[Hop]]:
        """The least A of any positioned chain, any time (ties: the faster one): the same DP with one cell."""
        units = np.zeros_like(self.units)
        best, cj, cn = self._run(a + 1e-9 * self.hold[:, None, :], units, 0)
        last = best[:, self.L, 0]
        mask = int(np.argmin(last))
        if not np.isfinite(last[mask]):
            return np.inf, []
        hops = self._trace(cj, cn, units, mask, 0)
        return float(sum(a[j, b, n] for j, b, n in hops)), hops


@dataclass
class NodeResult:
    bound_ms: float  # Lagrangian bound (req/ms)
    lp_ms: float  # restricted LP value (req/ms)
    used: list[tuple[int, list[Hop], float]]  # (class, hops, rate req/ms)
    columns: list[tuple[int, tuple[Hop, ...]]]


def solve_node(
    pm: PerfModel,
    slo: Slo,
    classes: list[LengthClass],
    delay_ms: float,
    box: Box,
    seed_columns=(),
    max_iterations: int = 60,
    cells: int = 400,
    tol: float = 1e-7,
    tracked: tuple[int, ...] = (),
) -> NodeResult:
    """The positioned chain LP of one box by column generation, with its Lagrangian bound (§2.2 argument)."""
    L, J = pm.L, pm.n_servers
    slots = slots_table(pm)
    w = hop_weights(box, slots, L)
    times = [_class_times(pm, q, slo, delay_ms) for q in classes]
    nq, quant = len(classes), slo.kind == "response"
    row_server = [nq + j for j in range(J)]
    row_slo = nq + J
    h = quiet_highs()
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    empty_i, empty_v = np.array([], dtype=np.int32), np.array([])
    for _ in range(nq):
        h.addRow(0.0, 0.0, 0, empty_i, empty_v)
    for _ in range(J):
        h.addRow(-INF, 1.0, 0, empty_i, empty_v)
    h.addRow(0.0 if quant else -INF, INF if quant else 0.0, 0, empty_i, empty_v)
    idx = list(range(nq)) + ([row_slo] if quant else [])
    vals = [-q.weight for q in classes] + ([-slo.quantile] if quant else [])
    h.addCol(1.0, 0.0, INF, len(idx), np.array(idx, dtype=np.int32), np.array(vals, dtype=float))

    fastest = []
    grids = []
    for t in times:
        ok_hold = np.where(np.isfinite(w).any(axis=1), t.hold, np.inf)  # (J, L+1): hop times of possible (j, n)
        f, _ = _PositionalGrid(ok_hold, L, 1.0, 1, tracked).least_price(np.where(np.isfinite(w), t.hold[:, None, :], np.inf))
        fastest.append(f)
        cap = 3.0 * f if np.isfinite(f) else 1.0
        if quant:
            cap = max(cap, 1.0001 * (slo.limit_ms - t.const_hold))
        grids.append(_PositionalGrid(ok_hold, L, cap, cells, tracked))
    if not any(np.isfinite(f) for f in fastest):
        return NodeResult(0.0, 0.0, [], [])

    columns: list[tuple[int, tuple[Hop, ...]]] = []
    seen: set = set()

    def column_of(qi: int, hops):
        shares = column_shares(box, slots, list(hops))
        if shares is None:
            return None
        t = times[qi]
        T = sum(t.hold[j, n] for j, _, n in hops)
        if quant:
            coef = 1.0 if grids[qi].floor_time(hops) + t.const_hold <= slo.limit_ms + 1e-9 else 0.0
        else:
            coef = sum(t.slo[j, n] for j, _, n in hops) + t.const_slo - slo.limit_ms
        rows = [qi] + [row_server[j] for j in shares] + [row_slo]
        vals = [1.0] + [T * s for s in shares.values()] + [coef]
        return rows, vals

    def add(qi: int, hops) -> bool:
        key = (qi, tuple(hops))
        if not hops or key in seen:
            return False
        col = column_of(qi, hops)
        if col is None:
            return False
        seen.add(key)
        rows, vals = col
        h.addCol(0.0, 0.0, INF, len(rows), np.array(rows, dtype=np.int32), np.array(vals, dtype=float))
        columns.append(key)
        return True

    for qi, hops in seed_columns:
        add(qi, list(hops))
    for qi, t in enumerate(times):
        add(qi, grids[qi].least_price(np.where(np.isfinite(w), t.hold[:, None, :], np.inf))[1])

    best_bound, lp_value = np.inf, 0.0
    for _ in range(max_iterations):
        h.run()
        lp_value = h.getInfo().objective_function_value
        y = np.asarray(h.getSolution().row_dual)
        pi = np.maximum(y[row_server], 0.0)
        y_slo = y[row_slo]
        d_lambda = 1.0 + sum(q.weight * y[qi] for qi, q in enumerate(classes)) + (slo.quantile * y_slo if quant else 0.0)
        a = np.where(np.isfinite(w), pi[:, None, None] * np.where(np.isfinite(w), w, 0.0), np.inf)
        excess, added = 0.0, False
        for qi, t in enumerate(times):
            q = classes[qi]
            grid = grids[qi]
            kappa = y_slo / q.out_max if slo.kind == "per_token" else 0.0
            extra = 0.0
            if slo.kind == "ttft":
                extra = y_slo * grid.least_price(np.where(np.isfinite(w), t.slo[:, None, :], np.inf))[0]
            cell_t, amin = grid.solve(a)
            with np.errstate(invalid="ignore"):
                obj = np.where(np.isfinite(amin), cell_t * (amin + kappa), np.inf)
            amin_any, tail_path = grid.least_price(a)
            tail = grid.cap * (amin_any + kappa) if np.isfinite(amin_any) else np.inf
            lb = min(float(np.min(obj)) if np.isfinite(obj).any() else np.inf, tail) + extra
            if quant:
                meet = cell_t + t.const_hold <= slo.limit_ms + 1e-9
                lb_meet = float(np.min(obj[meet])) if meet.any() and np.isfinite(obj[meet]).any() else np.inf
                profit = max(-(y[qi] + lb), -(y[qi] + lb_meet) - y_slo)
            else:
                profit = -(y[qi] + lb + y_slo * (t.const_slo - slo.limit_ms))
            excess += q.weight * max(0.0, profit)
            order = np.lexsort((cell_t, obj))[:4].tolist()
            if quant and meet.any():
                sel = np.flatnonzero(meet)
                order += sel[np.lexsort((cell_t[sel], obj[sel]))[:4]].tolist()
            for hops in [grid.path(c) for c in order] + [tail_path]:
                col = column_of(qi, hops) if hops else None
                if col is not None and -float(np.dot(y[col[0]], col[1])) > tol and add(qi, hops):
                    added = True
        denom = 1.0 - max(0.0, d_lambda) - excess
        if denom > 0:
            best_bound = min(best_bound, float(np.sum(pi)) / denom)
        if excess <= tol and abs(d_lambda) <= 1e-7:
            best_bound = min(best_bound, max(lp_value, float(np.sum(pi))))
            break
        if not added:
            break
    x = np.asarray(h.getSolution().col_value)[1:]
    used = [(qi, list(hops), float(v)) for (qi, hops), v in zip(columns, x) if v > 1e-12]
    return NodeResult(max(best_bound, lp_value), lp_value, used, columns)


def _inconsistent(box: Box, slots: np.ndarray, used) -> tuple[int, int, int] | None:
    """The server (by most memory use) whose used hops span more than their prices assumed: (j, s, t) with
    s, t its first and last used block; None when every server's used hops fit one range (a placement)."""
    hull: dict[int, list[int]] = {}
    load: dict[int, float] = {}
    spans: dict[int, set] = {}
    for _, hops, rate in used:
        per: dict[int, list[Hop]] = {}
        for hp in hops:
            per.setdefault(hp[0], []).append(hp)
        for j, hs in per.items():
            first, last = min(b + 1 for _, b, _ in hs), max(b + n for _, b, n in hs)
            lo, hi = hull.get(j, [first, last])
            hull[j] = [min(lo, first), max(hi, last)]
            spans.setdefault(j, set()).add(span_of(box, j, first, last))
            load[j] = load.get(j, 0.0) + rate * sum(n for _, _, n in hs)
    bad = []
    for j, (s, t) in hull.items():
        if any(sp < span_of(box, j, s, t) for sp in spans[j]):
            bad.append((-load[j], j, s, t))
    if not bad:
        return None
    _, j, s, t = min(bad)
    return j, s, t


def _role(box: Box, j: int, L: int) -> str | None:
    """'first' (holds block 1), 'last' (holds L, not 1), 'middle' (neither), or None while the box allows several."""
    if box.ahi[j] == 1:
        return "first"
    if box.alo[j] >= 2 and box.elo[j] == L:
        return "last"
    if box.alo[j] >= 2 and box.ehi[j] <= L - 1:
        return "middle"
    return None


def _repeats(used) -> bool:
    return any(len({j for j, _, _ in hops}) < len(hops) for _, hops, _ in used)


@dataclass
class RealisableBound:
    rate_per_s: float  # provable upper bound over contiguous placements (≤ chain_lp_per_s)
    chain_lp_per_s: float  # the chain LP's bound (perf.capacity_bound), for comparison
    incumbent_per_s: float  # fluid rate of the best placement met in the search (0 if none)
    nodes: int
    open_nodes: int
    closed: bool  # the search finished (bound = incumbent up to tolerance)
    incumbent_chains: list[dict] = field(default_factory=list)


def realisable_upper_bound(
    pm: PerfModel,
    slo: Slo,
    classes: list[LengthClass] | None = None,
    delay_ms: float | None = None,
    max_nodes: int = 60,
    cells: int = 400,
    rel_gap: float = 1e-3,
    max_tracked: int = 6,
) -> RealisableBound:
    """docs/capacity.md §2.5: branch and bound over server ranges; stops after ``max_nodes`` nodes (a node
    count, not a time limit, so the value is the same on every machine) with a bound that holds anyway."""
    classes = classes or length_classes(pm)
    d = pm.swarm.timing.initial_delay_ms + pm.swarm.timing.fair_allocation_delay_ms if delay_ms is None else delay_ms
    chain_lp = capacity_upper_bound(pm, slo, classes, d)
    slots = slots_table(pm)
    root = Box.full(pm.n_servers, pm.L)
    counter = 0
    load: dict[int, float] = {}
    seeds = []
    for ch in chain_lp.chains:
        for j, n in zip(ch["servers"], ch["blocks"]):
            load[j] = load.get(j, 0.0) + ch["rate_per_s"] * ch["service_ms"] * n
        pairs = list(zip(ch["servers"], ch["blocks"]))
        for order in itertools.permutations(pairs) if len(pairs) <= 4 else [pairs]:
            b, hops = 0, []
            for j, n in order:
                hops.append((j, b, n))
                b += n
            seeds.append((ch["class"], tuple(hops)))
    by_load = sorted(load, key=lambda j: (-load[j], j))[:max_tracked]
    tracked = tuple(sorted(by_load))
    res = solve_node(pm, slo, classes, d, root, seeds, cells=cells, tracked=tracked)
    heap = [(-res.bound_ms, counter, root, res)]
    stuck: list[float] = []  # bounds of nodes that cannot be split (pricing not converged, repeated servers)
    incumbent, inc_used, nodes = 0.0, [], 1
    while heap and nodes < max_nodes:
        neg, _, box, r = heapq.heappop(heap)
        if -neg <= incumbent * (1 + rel_gap):  # every open node is within the gap: done
            heapq.heappush(heap, (neg, counter, box, r))
            break
        free = [j for j in by_load if _role(box, j, pm.L) is None]
        if free:  # first fix the role of every tracked server: it holds block 1, or block L, or neither
            j = free[0]
            L = pm.L
            children = [
                box.with_(j, ahi=1),
                box.with_(j, alo=max(box.alo[j], 2), elo=L),
                box.with_(j, alo=max(box.alo[j], 2), ehi=min(box.ehi[j], L - 1)),
            ]
            for child in children:
                if child.alo[j] > child.ahi[j] or child.elo[j] > child.ehi[j]:
                    continue
                keep = seeds + [(qi, tuple(hops)) for qi, hops, _ in r.used]
                cr = solve_node(pm, slo, classes, d, child, keep, cells=cells, tracked=tracked)
                nodes += 1
                counter += 1
                heapq.heappush(heap, (-cr.bound_ms, counter, child, cr))
            continue
        split = _inconsistent(box, slots, r.used)
        if split is None:  # one range per server: a placement, whose fluid rate is the LP value
            if not _repeats(r.used):
                incumbent, inc_used = (r.lp_ms, r.used) if r.lp_ms > incumbent else (incumbent, inc_used)
            if _repeats(r.used) or r.bound_ms > r.lp_ms * (1 + rel_gap):
                stuck.append(r.bound_ms)
            continue
        j, s, t = split
        children = [
            box.with_(j, ahi=min(box.ahi[j], s), elo=max(box.elo[j], t)),
            box.with_(j, ahi=min(box.ahi[j], s), ehi=min(box.ehi[j], t - 1)),
            box.with_(j, alo=max(box.alo[j], s + 1), elo=max(box.elo[j], t)),
            box.with_(j, alo=max(box.alo[j], s + 1), ehi=min(box.ehi[j], t - 1)),
        ]
        for child in children:
            if child.alo[j] > child.ahi[j] or child.elo[j] > child.ehi[j]:
                continue
            keep = seeds + [(qi, tuple(hops)) for qi, hops, _ in r.used]
            cr = solve_node(pm, slo, classes, d, child, keep, cells=cells, tracked=tracked)
            nodes += 1
            counter += 1
            heapq.heappush(heap, (-cr.bound_ms, counter, child, cr))
    open_best = max([-n for n, *_ in heap] + stuck, default=0.0)
    bound = min(max(incumbent, open_best), chain_lp.rate_per_s / 1000.0)
    chains = [
        {
            "class": qi,
            "servers": [j for j, _, _ in hops],
            "first_block": [b + 1 for _, b, _ in hops],
            "blocks": [n for _, _, n in hops],
            "rate_per_s": v * 1000.0,
        }
        for qi, hops, v in inc_used
    ]
    closed = open_best <= incumbent * (1 + rel_gap)
    return RealisableBound(bound * 1000.0, chain_lp.rate_per_s, incumbent * 1000.0, nodes, len(heap) + len(stuck), closed, chains)
