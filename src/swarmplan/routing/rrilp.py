"""Routing-only ILP for a fixed placement (docs/model.md §13.2; Sun et al. 2025 eq. (19), the "RR only" ablation).

Integer flows of each client's requests on the edges of the placement's routing DAG, all requests held in
memory at once: min Σ (RTT_cj + τ_j k) g / R s.t. Σ_c Σ_{e into j} k_e g_ce ≤ S_j (the placement's slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.optim.highs import INF, Milp
from swarmplan.perf.chains import SOURCE, build_chain_graph
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement


@dataclass(frozen=True)
class RoutingResult:
    status: str
    objective_ms: float | None  # mean per-token decode time of the R requests
    routes: list[tuple[int, tuple[int, ...], tuple[int, ...], int]]  # (client, chain, blocks, count)


def route_concurrent(
    pm: PerfModel, placement: Placement, requests_per_client, time_limit_s: float | None = 30.0
) -> RoutingResult:
    g = build_chain_graph(placement.start, placement.n_blocks, pm.L)
    slots = np.asarray(placement.cache_slots)
    n_c = np.asarray(requests_per_client, dtype=np.int64)
    R = int(n_c.sum())
    C, E = len(n_c), g.n_edges
    last = np.flatnonzero(g.is_last)
    mdl = Milp()
    fits = g.k <= slots[g.dst]
    flows, sinks = [], []
    for c in range(C):
        cost = (pm.rtt_ms[c, g.dst] + pm.tau_ms[g.dst] * g.k) / R
        flows.append(mdl.add_vars(E, 0, np.where(fits, float(n_c[c]), 0.0), cost, True))
        sinks.append(mdl.add_vars(len(last), 0, float(n_c[c]), 0.0, True))
        # Conservation at every server: in − out − to sink = 0; the source sends n_c.
        n = len(g.is_last)
        rows = [g.dst, g.src[g.src != SOURCE], last]
        cols = [flows[c], flows[c][g.src != SOURCE], sinks[c]]
        vals = [np.ones(E), -np.ones(int((g.src != SOURCE).sum())), -np.ones(len(last))]
        mdl.add_rows(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), np.zeros(n), np.zeros(n))
        src_edges = flows[c][g.src == SOURCE]
        mdl.add_row(src_edges, np.ones(len(src_edges)), float(n_c[c]), float(n_c[c]))
    n = len(g.is_last)
    mdl.add_rows(
        np.concatenate([g.dst] * C), np.concatenate(flows), np.concatenate([g.k.astype(float)] * C), -INF, slots.astype(float)
    )
    if n == 0 or E == 0:
        return RoutingResult("infeasible", None, [])
    sol = mdl.solve(time_limit_s)
    if not sol.has_solution:
        return RoutingResult(sol.status, None, [])
    routes = []
    for c in range(C):
        flow = np.rint(sol.x[flows[c]]).astype(np.int64)
        while True:  # path decomposition: follow the first edge with flow left (lowest index)
            out = np.flatnonzero((g.src == SOURCE) & (flow > 0))
            if out.size == 0:
                break
            path = [int(out[0])]
            j = int(g.dst[path[-1]])
            while True:
                nxt = np.flatnonzero((g.src == j) & (flow > 0))
                if nxt.size == 0:
                    break
                path.append(int(nxt[0]))
                j = int(g.dst[path[-1]])
            count = int(flow[path].min())
            flow[path] -= count
            routes.append((c, tuple(int(g.dst[e]) for e in path), tuple(int(g.k[e]) for e in path), count))
    return RoutingResult(sol.status, sol.objective, routes)
