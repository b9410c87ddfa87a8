"""Helix request scheduling (Mei et al., ASPLOS '25 §5; related-work.md §2.3): max-flow over the placement's
strict pipeline graph, then each request's next hop by interleaved weighted round-robin (IWRR) over the
outgoing links weighted by their flow (docs/capacity.md §3.2).

Flow graph: coordinator → every node holding block 1, node i → node j when j starts right after i ends,
nodes holding block L → coordinator; node capacities T_i(k_i) (sessions, placement.helix.node_sessions),
links unbounded (no bandwidth in swarmplan's model). IWRR at node u: among links whose flow is at least 5 %
of u's outgoing flow and whose next node has KV room for the request, take argmin(load + w/flow) with w the
prompt length, and add w/flow to that link's load. When every link is short of KV room the request takes
the IWRR choice anyway and waits there (an online system must place it; Helix's online mode).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Route, Router
from swarmplan.routing.slots import SlotBook

MASK_SHARE = 0.05  # Helix: links carrying < 5 % of the node's outgoing flow are not used
SCALE = 1000  # capacities are integers for scipy's max-flow: sessions × SCALE


def strict_links(placement: Placement, L: int, partial: bool = False) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """(nodes holding block 1, links i → j, nodes holding block L). Strict mode: start_j = end_i + 1;
    partial inference (Helix's other mode, for placements not made by Helix): start_j ≤ end_i + 1 ≤ end_j."""
    m = np.asarray(placement.n_blocks)
    start = np.asarray(placement.start)
    held = [j for j in range(len(m)) if m[j] > 0]
    end = {j: int(start[j] + m[j] - 1) for j in held}
    first = [j for j in held if start[j] == 1]
    last = [j for j in held if end[j] == L]
    if partial:
        links = [(i, j) for i in held for j in held if i != j and start[j] <= end[i] + 1 <= end[j]]
    else:
        links = [(i, j) for i in held for j in held if i != j and start[j] == end[i] + 1]
    return first, links, last


def node_capacity(pm: PerfModel, placement: Placement) -> np.ndarray:
    """T_i(k_i) in sessions: ⌊slots / blocks⌋ of the placement (= placement.helix.node_sessions for Helix's)."""
    m = np.asarray(placement.n_blocks)
    return np.where(m > 0, np.asarray(placement.cache_slots) // np.maximum(m, 1), 0)


def helix_max_flow(pm: PerfModel, placement: Placement, partial: bool = False) -> tuple[float, dict[tuple, float]]:
    """Max flow (sessions) and the flow on every link: keys ('src', j), (i, j), (i, 'snk').
    Nodes are split in → out with the node's capacity; graph nodes: 0 = source, 1 = sink, 2 + 2j = in(j),
    3 + 2j = out(j)."""
    J = pm.n_servers
    cap = node_capacity(pm, placement)
    first, links, last = strict_links(placement, pm.L, partial)
    inf = int(cap.sum()) * SCALE + 1
    rows, cols, vals, keys = [], [], [], []

    def arc(u, v, c, key=None):
        rows.append(u), cols.append(v), vals.append(int(c))
        keys.append(key)

    for j in range(J):
        if placement.n_blocks[j] > 0:
            arc(2 + 2 * j, 3 + 2 * j, cap[j] * SCALE)
    for j in first:
        arc(0, 2 + 2 * j, inf, ("src", j))
    for i, j in links:
        arc(3 + 2 * i, 2 + 2 * j, inf, (i, j))
    for i in last:
        arc(3 + 2 * i, 1, inf, (i, "snk"))
    n = 2 + 2 * J
    graph = csr_matrix((np.array(vals, dtype=np.int32), (rows, cols)), shape=(n, n))
    res = maximum_flow(graph, 0, 1)
    flow = res.flow.tocsr() if hasattr(res, "flow") else res.residual
    per_link = {}
    for r, c, key in zip(rows, cols, keys):
        if key is not None:
            per_link[key] = max(0.0, float(flow[r, c])) / SCALE
    return res.flow_value / SCALE, per_link


class HelixRouter(Router):
    """Max-flow weights + IWRR per hop; the KV mask of Helix (the next node must have room now)."""

    name = "helix-iwrr"

    def __init__(self, pm: PerfModel, placement: Placement, use_fast_path: bool = True):
        super().__init__(pm, placement, use_fast_path)
        self.total_flow, flow = helix_max_flow(pm, placement)
        if self.total_flow <= 0:  # not a strict layout (another method's placement): partial inference
            self.total_flow, flow = helix_max_flow(pm, placement, partial=True)
        self.out: dict = {}  # node ('src' or j) → [(next node or 'snk', flow)]
        for key, v in flow.items():
            u, w = key
            self.out.setdefault(u, []).append((w, v))
        for u, lst in self.out.items():
            total = sum(v for _, v in lst)
            self.out[u] = [(w, v) for w, v in lst if total > 0 and v >= MASK_SHARE * total]
        self.load: dict = {}
        self.end = {
            j: int(placement.start[j] + placement.n_blocks[j] - 1) for j in range(pm.n_servers) if placement.n_blocks[j] > 0
        }

    def static_weights(self, client, l_in, l_out):
        g = self.graph
        return self.pm.hop_service(client, g.dst, g.k, None if l_in == self.pm.input_tokens else l_in, l_out)

    def _next(self, book: SlotBook, u, boundary: int, w: float):
        options = self.out.get(u, [])
        if not options:
            return None

        def k_of(v):
            return 0 if v == "snk" else self.end[v] - boundary

        fits = [(v, f) for v, f in options if v == "snk" or book.free(v) >= k_of(v)]
        pool = fits or options
        v, f = min(pool, key=lambda vf: (self.load.get((u, vf[0]), 0.0) + w / vf[1], str(vf[0])))
        self.load[(u, v)] = self.load.get((u, v), 0.0) + w / f
        return v

    def route(self, book: SlotBook, now, client, l_in, l_out) -> Route:
        if self.total_flow <= 0:
            raise RuntimeError("Helix's max flow is zero: the placement has no complete pipeline")
        servers, processed = [], []
        u, boundary = "src", 0
        while True:
            v = self._next(book, u, boundary, float(l_in))
            if v is None:
                raise RuntimeError("Helix's flow graph has a dead end")
            if v == "snk":
                break
            if v in servers or self.end[v] <= boundary:
                raise RuntimeError("Helix's flow graph loops")
            servers.append(v)
            processed.append(self.end[v] - boundary)
            boundary = self.end[v]
            u = v
        return Route(servers, processed, self.chain_waits(book, now, servers, processed))
