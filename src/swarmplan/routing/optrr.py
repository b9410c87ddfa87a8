"""Opt RR: each arrival takes the chain minimising Σ hop service + max wait (docs/model.md §13.4;
Sun et al. 2025 §8.4 "Optimized RR").

The authors solve a small MILP per arrival; the same optimum follows exactly from one shortest-path pass per
distinct wait value w (only edges with wait ≤ w allowed; answer = min_w SP_w + w). WS-RR sums waits, Opt RR
takes their maximum, which is what the request really waits.

``opt_rr_chain_fast`` gives exactly ``perf.chains.opt_rr_chain`` (the pass per w) with far fewer passes
(docs/model.md §13.4.1): each SP_w updates the previous one, and the loop stops once no later w can win.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from swarmplan.perf.chains import BlockChains, opt_rr_chain
from swarmplan.perf.jit import njit
from swarmplan.routing.base import Route
from swarmplan.routing.state import SlotState
from swarmplan.routing.wsrr import WsRrRouter


@njit
def _opt_rr_kernel(
    order, start, end, m, offset, gstart, hold_start, holders, slot_server, slot_k, slot_edge, base, short, ready, now, L, n
):  # pragma: no cover - compiled
    """min over the distinct waits w of candidate slots (edges with finite base and wait), ascending, of
    SP(slots with wait ≤ w) + w; the first strict minimum. Returns (total, the chain's servers, their blocks,
    their waits), empty arrays when no chain exists. The waits are ready − now where short, else 0
    (``routing.ready.ReadyTimes``), formed here; under overload most are 0, so only the others are sorted.

    Slots join in order of their wait and only lower distances, so SP_w follows from the last one by
    lowering what they reach: a server's distance, then its end boundary's least distance D_b, then the
    servers holding block b + 1 (docs/model.md §13.4.1). The costs equal ``_jk_kernel``'s (the same minima of
    the same sums), so the same w wins; its chain is then found once with the tie rule (``_chain_at``). With no negative
    weight a chain costs at least any of its prefixes (fl(x + y) ≥ x for y ≥ 0), so a distance v with
    v + w ≥ the best total so far can lead to no strictly better total, now or at a later (larger) w: it is
    not spread, and the loop stops once w alone reaches the best total."""
    ns = len(base)
    waits = np.where(short, ready - now, 0.0)
    cand = np.empty(ns, dtype=np.int64)
    nc = 0
    nonneg = True
    for s in range(ns):
        if slot_edge[s] and math.isfinite(base[s]) and math.isfinite(waits[s]):
            cand[nc] = s
            nc += 1
            if base[s] < 0:
                nonneg = False
    none = np.empty(0, dtype=np.int64)
    if nc == 0:
        return np.inf, none, none, np.empty(0)
    cand = cand[:nc]
    w = np.full(ns, np.inf)
    # ascending waits; the order inside a group of equal waits does not matter (distances are minima)
    nonzero = np.empty(nc, dtype=np.int64)
    nz = 0
    for s in cand:
        if waits[s] != 0.0:
            nonzero[nz] = s
            nz += 1
    nonzero = nonzero[:nz]
    nonzero = nonzero[np.argsort(waits[nonzero])]
    neg = 0
    while neg < nz and waits[nonzero[neg]] < 0.0:
        neg += 1
    by_wait = np.empty(nc, dtype=np.int64)
    by_wait[:neg] = nonzero[:neg]
    p = neg
    for s in cand:
        if waits[s] == 0.0:
            by_wait[p] = s
            p += 1
    by_wait[p:] = nonzero[neg:]
    dist = np.full(n, np.inf)
    dist_b = np.full(L + 1, np.inf)
    dist_b[0] = 0.0
    dirty = np.zeros(L + 1, dtype=np.bool_)
    best = np.inf
    best_w = np.inf
    p = 0
    while p < nc:
        cw = waits[by_wait[p]]
        if nonneg and cw >= best:
            break
        lo = L
        while p < nc and waits[by_wait[p]] == cw:  # the slots that join at this w
            s = by_wait[p]
            p += 1
            w[s] = base[s]
            j = slot_server[s]
            v = dist_b[end[j] - slot_k[s]] + w[s]
            if v < dist[j] and (v + cw < best or not nonneg):
                dist[j] = v
                e = end[j]
                if v < dist_b[e]:
                    dist_b[e] = v
                    dirty[e] = True
                    if e < lo:
                        lo = e
        for b in range(lo, L):  # lowered boundaries lower the servers holding the next block, in DAG order
            if dirty[b]:
                dirty[b] = False
                db = dist_b[b]
                for q in range(hold_start[b + 1], hold_start[b + 2]):
                    i = holders[q]
                    v = db + w[offset[i] + end[i] - b - 1]
                    if v < dist[i] and (v + cw < best or not nonneg):
                        dist[i] = v
                        e = end[i]
                        if v < dist_b[e]:
                            dist_b[e] = v
                            dirty[e] = True
        dirty[L] = False
        cost = dist_b[L] + 0.0
        if cost < np.inf and cost + cw < best:
            best = cost + cw
            best_w = cw
    if best == np.inf:
        return np.inf, none, none, np.empty(0)
    for s in cand:
        w[s] = base[s] if waits[s] <= best_w else np.inf
    end_at, pred = _chain_at(order, start, end, offset, gstart, w, L, n)
    size = 0
    j = end_at
    while j >= 0:
        size += 1
        j = pred[j]
    servers = np.empty(size, dtype=np.int64)
    blocks = np.empty(size, dtype=np.int64)
    chain_waits = np.empty(size)
    j = end_at
    for t in range(size - 1, -1, -1):
        i = pred[j]
        k = end[j] - (end[i] if i >= 0 else 0)
        servers[t], blocks[t], chain_waits[t] = j, k, waits[offset[j] + k - 1]
        j = i
    return best, servers, blocks, chain_waits


@njit
def _chain_at(order, start, end, offset, gstart, w, L, n):  # pragma: no cover - compiled
    """The cheapest chain under slot weights ``w`` with the tie rule of docs/model.md §8.1, as ``_jk_kernel``
    finds it: exact distances by the block DP (minima of the same sums), then, from the first server in
    block-L order at the least cost back to the source, each server's predecessor is the source if its source
    edge attains its distance, else the lowest-index server ending in its window whose sum attains it (the
    first minimum over edges ordered source, then predecessors by index). Returns (sink server or −1, pred)."""
    dist = np.full(n, np.inf)
    dist_b = np.full(L + 1, np.inf)
    dist_b[0] = 0.0
    for b in range(1, L + 1):
        for p in range(gstart[b], gstart[b + 1]):
            j = order[p]
            best = np.inf
            if start[j] == 1:
                best = 0.0 + w[offset[j] + b - 1]
            for bb in range(max(start[j] - 1, 1), b):
                if gstart[bb] < gstart[bb + 1]:
                    v = dist_b[bb] + w[offset[j] + b - bb - 1]
                    if v < best:
                        best = v
            dist[j] = best
            if best < dist_b[b]:
                dist_b[b] = best
    pred = np.full(n, -2, dtype=np.int64)
    end_at = -1
    least = np.inf
    for p in range(gstart[L], gstart[L + 1]):
        v = dist[order[p]] + 0.0
        if v < least:
            least = v
            end_at = order[p]
    j = end_at
    while j >= 0:
        dj = dist[j]
        e = end[j]
        if start[j] == 1 and 0.0 + w[offset[j] + e - 1] == dj:
            pred[j] = -1
            break
        arg = n
        for bb in range(max(start[j] - 1, 1), e):
            wk = w[offset[j] + e - bb - 1]
            for p in range(gstart[bb], gstart[bb + 1]):
                i = order[p]
                if i < arg and dist[i] + wk == dj:
                    arg = i
        pred[j] = arg
        j = arg
    return end_at, pred


def block_holders(bc: BlockChains) -> tuple[np.ndarray, np.ndarray]:
    """Servers holding each block b (1..L) as CSR: ``holders[hold_start[b]:hold_start[b + 1]]``."""
    held = np.flatnonzero(bc.n_blocks > 0)
    blk = np.concatenate([np.arange(bc.start[j], bc.end[j] + 1) for j in held.tolist()]) if len(held) else np.zeros(0)
    who = np.repeat(held, bc.n_blocks[held])
    by = np.argsort(blk, kind="stable")
    hold_start = np.searchsorted(blk[by], np.arange(bc.L + 2), side="left").astype(np.int64)
    return hold_start, who[by].astype(np.int64)


def opt_rr_chain_fast(bc: BlockChains, slot_base, slot_waits, holders=None):
    """``perf.chains.opt_rr_chain``'s answer (total, servers, blocks), or (inf, [], []), lowering distances
    as slots join instead of a pass per wait (docs/model.md §13.4.1). ``holders``: ``block_holders(bc)``,
    kept by the caller. Weights and waits must not be NaN."""
    waits = np.ascontiguousarray(slot_waits, dtype=np.float64)
    best, servers, processed, _ = opt_rr_chain_ready(bc, slot_base, np.ones(len(waits), dtype=np.bool_), waits, 0.0, holders)
    return best, servers, processed


def opt_rr_chain_ready(bc: BlockChains, slot_base, short, ready, now: float, holders=None):
    """``opt_rr_chain_fast`` with the waits given as a router keeps them (``routing.ready.ReadyTimes``):
    ready − now where short, else 0 (x − 0.0 = x, so ``opt_rr_chain_fast`` passes waits as ready, now 0).
    Returns (total, servers, blocks, the chain's waits)."""
    hold_start, who = block_holders(bc) if holders is None else holders
    best, servers, blocks, chain_waits = _opt_rr_kernel(
        bc.order,
        bc.start,
        bc.end,
        bc.n_blocks,
        bc.offset,
        bc.group_start,
        hold_start,
        who,
        bc.slot_server,
        bc.slot_k,
        bc.slot_edge,
        np.ascontiguousarray(slot_base, dtype=np.float64),
        short,
        ready,
        float(now),
        bc.L,
        len(bc.start),
    )
    return float(best), servers.tolist(), blocks.tolist(), chain_waits.tolist()


class OptRrRouter(WsRrRouter):
    """WS-RR's static weights and no-wait shortcut; the slow path takes min over w of SP_w + w on the
    (server, k) slots that are edges of the graph (docs/model.md §8.2, §13.4)."""

    name = "opt-rr"

    @cached_property
    def _holders(self):
        return block_holders(self.blocks)

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        if not self.use_fast_path:
            _, servers, processed = opt_rr_chain(self.blocks, base, self.slot_waits(book, now, u))
            return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
        kept = self.ready_times(book, u)
        if kept is None:  # a state without the book's log: waits asked afresh, passed as instants at 0
            short, ready, at = np.ones(self.blocks.n_slots, dtype=np.bool_), self.slot_waits(book, now, u), 0.0
        else:
            (short, ready), at = kept.refresh(book), now
        # A chain's (server, k) are edge slots, whose waits the kernel formed (docs/model.md §9.5).
        _, servers, processed, chain_waits = opt_rr_chain_ready(self.blocks, base, short, ready, at, self._holders)
        return Route(servers, processed, chain_waits, u)
