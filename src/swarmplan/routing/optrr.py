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

import numpy as np

from swarmplan.perf.chains import SOURCE, BlockChains, _jk_incremental, _jk_kernel, opt_rr_chain
from swarmplan.perf.jit import njit
from swarmplan.routing.base import Route
from swarmplan.routing.state import SlotState
from swarmplan.routing.wsrr import WsRrRouter


@njit
def _opt_rr_kernel(order, start, end, m, offset, gstart, slot_server, slot_edge, base, waits, L, n):  # pragma: no cover
    """min over the distinct waits w of candidate slots (edges with finite base and wait), ascending, of
    SP(slots with wait ≤ w) + w; the first strict minimum. Returns (total, sink server or −1, predecessors).

    Slots join in order of their wait, and each SP_w is ``_jk_incremental``'s update of the last one (only the
    servers whose inputs changed are redone). SP with every candidate allowed (the largest w) is a lower
    bound of every SP_w and fl(x + w) is non-decreasing in x and w: once bound + w ≥ the best total, no
    later w is strictly better and the loop stops."""
    ns = len(base)
    best = np.inf
    best_end = -1
    best_pred = np.full(n, -2, dtype=np.int64)
    # Only candidate slots (edges with finite base and wait) ever change a weight the DP reads: a slot that is
    # not an edge is never read, an infinite base stays infinite, an infinite wait never joins.
    cand = np.empty(ns, dtype=np.int64)
    nc = 0
    top = -np.inf
    for s in range(ns):
        if slot_edge[s] and math.isfinite(base[s]) and math.isfinite(waits[s]):
            cand[nc] = s
            nc += 1
            if waits[s] > top:
                top = waits[s]
    if nc == 0:
        return best, best_end, best_pred
    cand = cand[:nc]
    w = np.full(ns, np.inf)
    for s in cand:
        w[s] = base[s]
    bound, _, _ = _jk_kernel(order, start, end, m, offset, gstart, w, np.zeros(n), L, n)
    w[:] = np.inf
    cw_of = waits[cand]
    by_wait = cand[np.argsort(cw_of)]  # the order inside a group of equal waits does not matter
    own = np.zeros(n, dtype=np.bool_)
    dist, pred = np.full(n, np.inf), np.full(n, -2, dtype=np.int64)
    sd, pmin = np.empty(len(order)), np.empty(len(order), dtype=np.int64)
    first = True
    p = 0
    while p < nc:
        cw = waits[by_wait[p]]
        if bound + cw >= best:
            break
        while p < nc and waits[by_wait[p]] == cw:  # the slots that join at this w
            s = by_wait[p]
            w[s] = base[s]
            own[slot_server[s]] = True
            p += 1
        cost, end_at = _jk_incremental(order, start, end, m, offset, gstart, w, m, own, dist, pred, sd, pmin, first, L, n)
        first = False
        if end_at >= 0 and cost + cw < best:
            best = cost + cw
            best_end = end_at
            best_pred[:] = pred
    return best, best_end, best_pred


def opt_rr_chain_fast(bc: BlockChains, slot_base, slot_waits):
    """``perf.chains.opt_rr_chain``'s answer (total, servers, blocks), or (inf, [], []): incremental passes
    with an early stop (docs/model.md §13.4.1). Weights and waits must not be NaN."""
    base = np.ascontiguousarray(slot_base, dtype=np.float64)
    waits = np.ascontiguousarray(slot_waits, dtype=np.float64)
    n = len(bc.start)
    best, end_at, pred = _opt_rr_kernel(
        bc.order, bc.start, bc.end, bc.n_blocks, bc.offset, bc.group_start, bc.slot_server, bc.slot_edge, base, waits, bc.L, n
    )
    if end_at < 0:
        return float("inf"), [], []
    servers, processed = [], []
    j, end = int(end_at), bc.end
    while j != SOURCE:
        i = int(pred[j])
        servers.append(j)
        processed.append(int(end[j] - (end[i] if i >= 0 else 0)))
        j = i
    return float(best), servers[::-1], processed[::-1]


class OptRrRouter(WsRrRouter):
    """WS-RR's static weights and no-wait shortcut; the slow path takes min over w of SP_w + w on the
    (server, k) slots that are edges of the graph (docs/model.md §8.2, §13.4)."""

    name = "opt-rr"

    def route(self, book: SlotState, now, client, l_in, l_out) -> Route:
        servers, processed, base = self.static_route(client, l_in, l_out)
        u = self.units(l_in, l_out)
        if self.use_fast_path and all(book.free(j) >= k * u for j, k in zip(servers, processed)):
            return Route(servers, processed, [0.0] * len(servers), u)
        chain = opt_rr_chain_fast if self.use_fast_path else opt_rr_chain
        _, servers, processed = chain(self.blocks, base, self.slot_waits(book, now, u))
        return Route(servers, processed, self.chain_waits(book, now, servers, processed, u), u)
