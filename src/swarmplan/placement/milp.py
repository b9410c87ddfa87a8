"""Exact joint block placement and routing (docs/model.md §13; Sun et al. 2025 §3–4).

Problem: place contiguous blocks on servers and route R concurrent requests (split evenly over the
clients) so that the mean per-token decode time Σ_r Σ_hops (RTT_cj + τ_j n) / R is minimal, with the
memory of all R requests held at once: s_m m_j + s_c Σ_r n_rj ≤ M_j, and m_j ≤ the GPU's clamp.

Two formulations, both solved by HiGHS:
* ``layered`` (method ``milp``): a request's route is a path over block boundaries 0..L; the arc
  (j, b, e) means "enter j at block b+1 and leave at its last block e", so the blocks processed on an arc
  are the constant e − b and no product terms are needed. Flows are aggregated per client (requests of
  one client are interchangeable) and placement is described by per-block holding, start and end binaries.
* ``reference`` (method ``milp-reference``): the authors' per-request big-M linearisation over links
  (§4.2–4.4), kept to compare against and to reproduce their model.
By default a server may hold no block; ``require_every_server`` restores the authors' m_j ≥ 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from pydantic import Field as Constraint

from swarmplan.errors import NoSolutionError, SwarmplanError
from swarmplan.optim.highs import INF, Milp, Solution
from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement, slots_for


@dataclass(frozen=True)
class MilpOptions:
    """HiGHS settings for the MILP placements (docs/model.md §13); constraints checked by ``--option``."""

    time_limit_s: Annotated[float, Constraint(gt=0, allow_inf_nan=False)] | None = 60.0
    rel_gap: Annotated[float, Constraint(ge=0, allow_inf_nan=False)] = 1e-4
    threads: Annotated[int, Constraint(ge=1)] | None = None
    verbose: bool = False  # the solver log, on stderr
    require_every_server: bool = False  # every server holds ≥ 1 block (the authors' model)


@dataclass
class MilpResult:
    formulation: str
    solution: Solution
    R: int
    placement: Placement | None
    routes: list[tuple[int, tuple[int, ...], tuple[int, ...], int]] = field(
        default_factory=list
    )  # (client, chain, blocks, count)

    @property
    def objective_ms(self) -> float | None:
        return self.solution.objective

    @property
    def bound_ms(self) -> float | None:
        return self.solution.bound


def requests_per_client(R: int, n_clients: int) -> np.ndarray:
    """R requests split as evenly as possible (client 0 first)."""
    return np.array([R // n_clients + (1 if c < R % n_clients else 0) for c in range(n_clients)], dtype=np.int64)


def block_caps(pm: PerfModel) -> np.ndarray:
    """Most blocks a server can hold at all: its clamp, L, and the memory for the weights plus one request."""
    by_memory = np.floor(pm.memory_gb / (pm.block_gb + pm.kv_gb) + 1e-9).astype(np.int64)
    return np.minimum(np.minimum(pm.max_blocks, pm.L), by_memory)


# --- layered formulation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layered:
    model: Milp
    y: np.ndarray  # (N, L) holds block b+1
    s: np.ndarray
    z: np.ndarray
    arc_j: np.ndarray
    arc_b: np.ndarray
    arc_e: np.ndarray
    g: np.ndarray  # (C, arcs)
    n_c: np.ndarray


def _build_layered(pm: PerfModel, R: int, require_every_server: bool) -> _Layered:
    N, L, C = pm.n_servers, pm.L, pm.rtt_ms.shape[0]
    n_c = requests_per_client(R, C)
    caps = block_caps(pm)
    mdl = Milp()
    y = mdl.add_vars(N * L, 0, 1, 0, True).reshape(N, L)
    s = mdl.add_vars(N * L, 0, 1, 0, True).reshape(N, L)
    z = mdl.add_vars(N * L, 0, 1, 0, True).reshape(N, L)
    aj, ab, ae = [], [], []
    for j in range(N):
        for b in range(L):
            for e in range(b + 1, min(L, b + int(caps[j])) + 1):
                aj.append(j), ab.append(b), ae.append(e)
    aj, ab, ae = np.array(aj, dtype=np.int64), np.array(ab, dtype=np.int64), np.array(ae, dtype=np.int64)
    A = len(aj)
    k = (ae - ab).astype(float)
    g = np.stack([mdl.add_vars(A, 0, float(n_c[c]), (pm.rtt_ms[c, aj] + pm.tau_ms[aj] * k) / R, True) for c in range(C)])
    ones = np.ones(N * L)
    yy, ss, zz = y.ravel(), s.ravel(), z.ravel()
    prev = np.where((np.arange(N * L) % L) > 0, yy - 1, -1)  # y[j, b−1]
    nxt = np.where((np.arange(N * L) % L) < L - 1, yy + 1, -1)  # y[j, b+1]
    # Contiguity: a rising edge needs a start, a falling edge an end; at most one of each per server.
    for edge, mark in ((prev, ss), (nxt, zz)):
        has = edge >= 0
        rows = np.arange(N * L)
        mdl.add_rows(
            np.concatenate([rows, rows[has], rows]),
            np.concatenate([yy, edge[has], mark]),
            np.concatenate([ones, -ones[has], -ones]),
            -INF,
            np.zeros(N * L),
        )
        mdl.add_rows(np.repeat(np.arange(N), L), mark, 1.0, -INF, np.ones(N))
        mdl.add_rows(
            np.concatenate([np.arange(N * L)] * 2),
            np.concatenate([mark, yy]),
            np.concatenate([ones, -ones]),
            -INF,
            np.zeros(N * L),
        )
    # Blocks per server within the GPU's clamp (and ≥ 1 in the authors' variant).
    mdl.add_rows(np.repeat(np.arange(N), L), yy, 1.0, 1.0 if require_every_server else 0.0, caps.astype(float))
    for c in range(C):
        gc = g[c]
        # Leaving j at e needs j to end at e; entering j at b+1 needs j to hold b+1.
        exit_row = aj * L + (ae - 1)
        mdl.add_rows(
            np.concatenate([exit_row, np.arange(N * L)]),
            np.concatenate([gc, zz]),
            np.concatenate([np.ones(A), -float(n_c[c]) * ones]),
            -INF,
            np.zeros(N * L),
        )
        entry_row = aj * L + ab
        mdl.add_rows(
            np.concatenate([entry_row, np.arange(N * L)]),
            np.concatenate([gc, yy]),
            np.concatenate([np.ones(A), -float(n_c[c]) * ones]),
            -INF,
            np.zeros(N * L),
        )
        # Flow conservation over boundaries 0..L: n_c leave 0, n_c reach L.
        rhs = np.zeros(L + 1)
        rhs[0], rhs[L] = n_c[c], -n_c[c]
        mdl.add_rows(np.concatenate([ab, ae]), np.concatenate([gc, gc]), np.concatenate([np.ones(A), -np.ones(A)]), rhs, rhs)
    # Memory: weights plus the KV slots of every request processed on j.
    mem_rows = [np.repeat(np.arange(N), L)] + [aj] * C
    mem_cols = [yy] + [g[c] for c in range(C)]
    mem_vals = [np.full(N * L, pm.block_gb)] + [pm.kv_gb * k] * C
    mdl.add_rows(np.concatenate(mem_rows), np.concatenate(mem_cols), np.concatenate(mem_vals), -INF, pm.memory_gb)
    return _Layered(mdl, y, s, z, aj, ab, ae, g, n_c)


def _layered_start(f: _Layered, start: np.ndarray, n_blocks: np.ndarray, routes) -> np.ndarray:
    x = np.zeros(f.model.n_cols)
    for j, (a, m) in enumerate(zip(start.tolist(), n_blocks.tolist())):
        if m > 0:
            x[f.y[j, a - 1 : a - 1 + m]] = 1
            x[f.s[j, a - 1]] = 1
            x[f.z[j, a + m - 2]] = 1
    arc_index = {(j, b, e): i for i, (j, b, e) in enumerate(zip(f.arc_j.tolist(), f.arc_b.tolist(), f.arc_e.tolist()))}
    for client, chain, blocks, count in routes:
        b = 0
        for j, k in zip(chain, blocks):
            x[f.g[client, arc_index[(j, b, b + k)]]] += count
            b += k
    return x


def _decode_layered(pm: PerfModel, f: _Layered, x: np.ndarray):
    held = x[f.y] > 0.5
    start = np.zeros(pm.n_servers, dtype=np.int64)
    m = held.sum(axis=1).astype(np.int64)
    for j in range(pm.n_servers):
        if m[j]:
            start[j] = int(np.argmax(held[j])) + 1
    routes = []
    for c in range(len(f.n_c)):
        flow = np.rint(x[f.g[c]]).astype(np.int64)
        while True:
            b, chain, blocks = 0, [], []
            while b < pm.L:
                out = np.flatnonzero((f.arc_b == b) & (flow > 0))
                if out.size == 0:
                    break
                a = int(out[0])
                chain.append(int(f.arc_j[a])), blocks.append(int(f.arc_e[a] - b))
                b = int(f.arc_e[a])
            if b < pm.L or not chain:
                break
            idx = [
                int(np.flatnonzero((f.arc_j == j) & (f.arc_b == bb) & (f.arc_e == bb + k))[0])
                for j, k, bb in zip(chain, blocks, np.cumsum([0] + blocks[:-1]).tolist())
            ]
            count = int(min(flow[i] for i in idx))
            for i in idx:
                flow[i] -= count
            routes.append((c, tuple(chain), tuple(blocks), count))
    return start, m, routes


# --- reference formulation (the authors' big-M model) ----------------------------------------------------


@dataclass(frozen=True)
class _Reference:
    model: Milp
    a: np.ndarray
    m: np.ndarray
    u: np.ndarray | None
    links: list[tuple[int, int]]  # (i, j); i = −1 source, j = −2 sink
    f: np.ndarray  # (R, links)
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    delta: np.ndarray
    client_of: np.ndarray


def _build_reference(pm: PerfModel, R: int, require_every_server: bool) -> _Reference:
    N, L, C = pm.n_servers, pm.L, pm.rtt_ms.shape[0]
    caps = block_caps(pm).astype(float)
    client_of = np.repeat(np.arange(C), requests_per_client(R, C))
    mdl = Milp()
    a = mdl.add_vars(N, 1, L, 0, True)
    m = mdl.add_vars(N, 1 if require_every_server else 0, caps, 0, True)
    u = None if require_every_server else mdl.add_vars(N, 0, 1, 0, True)
    links = [(-1, j) for j in range(N)] + [(i, j) for i in range(N) for j in range(N) if i != j] + [(i, -2) for i in range(N)]
    E = len(links)
    li = np.array([p[0] for p in links])
    lj = np.array([p[1] for p in links])
    into_server, from_server = lj >= 0, li >= 0
    f = np.zeros((R, E), dtype=np.int64)
    al, be, ga, de = (np.zeros((R, E), dtype=np.int64) for _ in range(4))
    mem_cols: list[list[int]] = [[] for _ in range(N)]
    mem_vals: list[list[float]] = [[] for _ in range(N)]
    for r in range(R):
        c = int(client_of[r])
        # Per-token cost of a link into server j: RTT_cj f + τ_j (α + γ − β − δ); links into the sink cost 0.
        rtt = np.where(into_server, pm.rtt_ms[c, np.maximum(lj, 0)], 0.0) / R
        tau = np.where(into_server, pm.tau_ms[np.maximum(lj, 0)], 0.0) / R
        f[r] = mdl.add_vars(E, 0, 1, rtt, True)
        al[r] = mdl.add_vars(E, 0, L + 1, tau)
        be[r] = mdl.add_vars(E, 0, np.where(from_server, L, 0), -tau)
        ga[r] = mdl.add_vars(E, 0, L, tau)
        de[r] = mdl.add_vars(E, 0, L, -tau)
        rows, cols, vals, lo, hi = [], [], [], [], []

        def row(cs, vs, lb=-INF, ub=INF):
            k = len(lo)
            rows.extend([k] * len(cs)), cols.extend(cs), vals.extend(vs), lo.append(lb), hi.append(ub)

        for e, (i, j) in enumerate(links):
            F, A_, B_, G_, D_ = int(f[r, e]), int(al[r, e]), int(be[r, e]), int(ga[r, e]), int(de[r, e])
            if j >= 0:  # (9), (11): α ≈ f a_j, γ ≈ f m_j; (13f) progress e_j ≥ e_i + 1
                row([A_, F], [1, -(L + 1)], ub=0), row([A_, int(a[j])], [1, -1], ub=0)
                row([A_, int(a[j]), F], [1, -1, -(L + 1)], lb=-(L + 1))
                row([G_, F], [1, -L], ub=0), row([G_, int(m[j])], [1, -1], ub=0)
                row([G_, int(m[j]), F], [1, -1, -L], lb=-L)
                row([B_, D_, int(a[j]), int(m[j])], [1, 1, -1, -1], ub=-1)
                mem_cols[j].extend([A_, G_, B_, D_]), mem_vals[j].extend([pm.kv_gb, pm.kv_gb, -pm.kv_gb, -pm.kv_gb])
            else:  # into the sink: α = (L+1) f, γ = f
                row([A_, F], [1, -(L + 1)], lb=0, ub=0), row([G_, F], [1, -1], lb=0, ub=0)
            if i >= 0:  # (10), (12): β ≈ f a_i, δ ≈ f m_i; (13e) no gap a_j ≤ e_i + 1
                row([B_, F], [1, -L], ub=0), row([B_, int(a[i])], [1, -1], ub=0)
                row([B_, int(a[i]), F], [1, -1, -L], lb=-L)
                row([D_, F], [1, -L], ub=0), row([D_, int(m[i])], [1, -1], ub=0)
                row([D_, int(m[i]), F], [1, -1, -L], lb=-L)
                row([A_, int(a[i]), int(m[i])], [1, -1, -1], ub=0)
            else:  # from the source: β = 0 (bound), δ = f, α ≤ 1
                row([D_, F], [1, -1], lb=0, ub=0), row([A_], [1], ub=1)
            if u is not None:  # a link touching an empty server is closed
                for end in (i, j):
                    if end >= 0:
                        row([F, int(u[end])], [1, -1], ub=0)
        # (13c) flow conservation: node −1 = source, 0..N−1 servers, N = sink.
        for v in range(-1, N + 1):
            node = -2 if v == N else v
            out_e = [int(f[r, e]) for e, (i, _) in enumerate(links) if i == node]
            in_e = [int(f[r, e]) for e, (_, j) in enumerate(links) if j == node]
            rhs = 1 if node == -1 else (-1 if node == -2 else 0)
            row(out_e + in_e, [1] * len(out_e) + [-1] * len(in_e), lb=rhs, ub=rhs)
        mdl.add_rows(rows, cols, vals, lo, hi)
    if u is not None:
        mdl.add_rows(
            np.concatenate([np.arange(N)] * 2), np.concatenate([m, u]), np.concatenate([np.ones(N), -np.ones(N)]), 0.0, INF
        )
        mdl.add_rows(np.concatenate([np.arange(N)] * 2), np.concatenate([m, u]), np.concatenate([np.ones(N), -caps]), -INF, 0.0)
    # (13d) a_j + m_j ≤ L + 1; (13b) memory.
    mdl.add_rows(np.concatenate([np.arange(N)] * 2), np.concatenate([a, m]), 1.0, -INF, float(L + 1))
    for j in range(N):
        mdl.add_row([int(m[j])] + mem_cols[j], [pm.block_gb] + mem_vals[j], ub=float(pm.memory_gb[j]))
    return _Reference(mdl, a, m, u, links, f, al, be, ga, de, client_of)


def _reference_start(f: _Reference, start: np.ndarray, n_blocks: np.ndarray, routes, L: int) -> np.ndarray:
    x = np.zeros(f.model.n_cols)
    a = np.where(n_blocks > 0, start, 1)
    x[f.a] = a
    x[f.m] = n_blocks
    if f.u is not None:
        x[f.u] = n_blocks > 0
    link_index = {p: e for e, p in enumerate(f.links)}
    per_request = [(c, ch, bl) for c, ch, bl, count in routes for _ in range(count)]
    by_client: dict[int, list] = {}
    for c, ch, bl in per_request:
        by_client.setdefault(c, []).append((ch, bl))
    for r, c in enumerate(f.client_of.tolist()):
        chain, _ = by_client[c].pop()
        hops = [-1, *chain, -2]
        for i, j in zip(hops[:-1], hops[1:]):
            e = link_index[(i, j)]
            x[f.f[r, e]] = 1
            x[f.alpha[r, e]] = a[j] if j >= 0 else L + 1
            x[f.gamma[r, e]] = n_blocks[j] if j >= 0 else 1
            x[f.beta[r, e]] = a[i] if i >= 0 else 0
            x[f.delta[r, e]] = n_blocks[i] if i >= 0 else 1
    return x


def _decode_reference(pm: PerfModel, f: _Reference, x: np.ndarray):
    m = np.rint(x[f.m]).astype(np.int64)
    start = np.where(m > 0, np.rint(x[f.a]).astype(np.int64), 0)
    counts: dict[tuple, int] = {}
    end = start + m - 1
    for r, c in enumerate(f.client_of.tolist()):
        used = {f.links[e] for e in range(len(f.links)) if x[f.f[r, e]] > 0.5}
        node, chain, blocks, last = -1, [], [], 0
        while node != -2:
            node = next(j for (i, j) in used if i == node)
            if node >= 0:
                chain.append(node), blocks.append(int(end[node] - last))
                last = int(end[node])
        key = (c, tuple(chain), tuple(blocks))
        counts[key] = counts.get(key, 0) + 1
    return start, m, [(c, ch, bl, n) for (c, ch, bl), n in counts.items()]


# --- entry points ---------------------------------------------------------------------------------


def solve_milp(
    pm: PerfModel,
    R: int,
    formulation: str = "layered",
    options: MilpOptions = MilpOptions(),
    warm_start: tuple[Placement, list] | None = None,
    relax: bool = False,
) -> MilpResult:
    """Solve (or, with ``relax``, bound by the LP relaxation) the joint problem for R concurrent requests."""
    if R < 1:
        raise SwarmplanError("R", f"R = {R} is not a positive integer", "give R ≥ 1")
    if formulation == "layered":
        f = _build_layered(pm, R, options.require_every_server)
        start = _layered_start(f, warm_start[0].start, warm_start[0].n_blocks, warm_start[1]) if warm_start else None
    elif formulation == "reference":
        f = _build_reference(pm, R, options.require_every_server)
        start = _reference_start(f, warm_start[0].start, warm_start[0].n_blocks, warm_start[1], pm.L) if warm_start else None
    else:
        raise SwarmplanError("formulation", f"unknown MILP formulation {formulation!r}", "use layered or reference")
    sol = f.model.solve(options.time_limit_s, options.rel_gap, options.threads, options.verbose, start, relax)
    name = "milp" if formulation == "layered" else "milp-reference"
    if relax or not sol.has_solution:
        return MilpResult(formulation, sol, R, None)
    decode = _decode_layered if formulation == "layered" else _decode_reference
    st, m, routes = decode(pm, f, sol.x)
    placement = Placement(
        method=name,
        start=st,
        n_blocks=m,
        cache_slots=slots_for(pm, m, "proposed"),
        memory_model="proposed",
        R=R,
        info={
            "objective_ms_per_token": sol.objective,
            "best_bound_ms_per_token": sol.bound,
            "gap": sol.gap,
            "status": sol.status,
            "solve_seconds": sol.seconds,
            "formulation": formulation,
            "variables": f.model.n_cols,
            "constraints": f.model.n_rows,
        },
    )
    return MilpResult(formulation, sol, R, placement, routes)


def infeasible_error(result: MilpResult) -> SwarmplanError:
    status = result.solution.status
    if "infeasible" in status:
        return NoSolutionError(
            "R",
            f"no placement can hold R = {result.R} concurrent requests in memory ({status})",
            "lower R (--R) or add servers/memory",
        )
    return SwarmplanError("--time-limit", f"the solver found no placement before stopping ({status})", "raise --time-limit")
