"""Helix on swarmplan's model: its MILP against brute force, its max-flow against networkx, IWRR's split."""

import itertools

import networkx as nx
import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.placement.helix import helix_placement, max_layers, node_sessions
from swarmplan.placement.types import Placement, slots_for
from swarmplan.routing.helix import HelixRouter, helix_max_flow
from swarmplan.routing.slots import SlotBook


def tiny_pm(mem=(3.0, 2.6, 4.0), L=4):
    servers = [{"memory_gb": m, "decode_ms_per_block": 5.0 + i} for i, m in enumerate(mem)]
    return perf_of(explicit_scenario(servers, [10.0, 20.0, 30.0][: len(mem)], n_blocks=L))


def placement(pm, start, m):
    m = np.asarray(m)
    return Placement("x", np.asarray(start), m, slots_for(pm, m, "proposed"), "proposed")


def nx_flow(pm, start, m) -> float:
    """Independent max flow: networkx on node-split graph built from the strict-mode rule."""
    cap = node_sessions(pm)
    g = nx.DiGraph()
    L = pm.L
    for j in range(pm.n_servers):
        if m[j] == 0:
            continue
        g.add_edge(("in", j), ("out", j), capacity=float(cap[j, m[j]]))
        if start[j] == 1:
            g.add_edge("s", ("in", j))
        if start[j] + m[j] - 1 == L:
            g.add_edge(("out", j), "t")
        for i in range(pm.n_servers):
            if i != j and m[i] and start[i] == start[j] + m[j]:
                g.add_edge(("out", j), ("in", i))
    if "s" not in g or "t" not in g:
        return 0.0
    return nx.maximum_flow_value(g, "s", "t")


def all_layouts(pm):
    kmax = max_layers(pm)
    cap = node_sessions(pm)
    opts = [
        [(a, k) for k in range(1, int(kmax[j]) + 1) if cap[j, k] > 0 for a in range(1, pm.L - k + 2)] for j in range(pm.n_servers)
    ]
    for combo in itertools.product(*opts):
        yield [a for a, _ in combo], [k for _, k in combo]


def test_max_flow_matches_networkx_on_every_layout():
    pm = tiny_pm()
    for start, m in all_layouts(pm):
        ours, _ = helix_max_flow(pm, placement(pm, start, m))
        assert ours == pytest.approx(nx_flow(pm, start, m), abs=1e-9)


def test_milp_reaches_the_brute_force_optimum():
    pm = tiny_pm()
    best = max(nx_flow(pm, s, m) for s, m in all_layouts(pm))
    pl = helix_placement(pm)
    assert pl.info["milp_sessions"] == pytest.approx(best, abs=1e-6)
    assert helix_max_flow(pm, pl)[0] == pytest.approx(best, abs=1e-6)


def test_weights_take_at_most_half_the_memory():
    pm = tiny_pm(mem=(3.0, 2.6, 4.0))
    # block 1 GB: ⌊0.5·3⌋ = 1, ⌊0.5·2.6⌋ = 1, ⌊0.5·4⌋ = 2 layers
    assert max_layers(pm).tolist() == [1, 1, 2]


def test_iwrr_splits_requests_in_proportion_to_flow():
    """Two parallel whole-model pipelines with flows 2:1 (sessions): IWRR sends 2 of every 3 requests to the
    first, deterministically."""
    servers = [{"memory_gb": 4.6, "decode_ms_per_block": 5.0}, {"memory_gb": 4.3, "decode_ms_per_block": 5.0}]
    pm = perf_of(explicit_scenario(servers, [10.0, 10.0], n_blocks=2))
    pl = placement(pm, [1, 1], [2, 2])
    cap = node_sessions(pm)
    assert (cap[0, 2], cap[1, 2]) == (13, 11)  # ⌊(4.6 − 2)/0.1/2⌋, ⌊(4.3 − 2)/0.1/2⌋
    router = HelixRouter(pm, pl)
    book = SlotBook(np.full(2, 10**6))
    picks = [router.route(book, 0.0, 0, 10, 90).servers[0] for _ in range(240)]
    assert picks.count(0) == pytest.approx(240 * 13 / 24, abs=1)
