"""Fast chain building (issue 15) equals the straightforward definitions on random placements and weights."""

import numpy as np
import pytest
from conftest import draw_spans
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmplan.perf import chains
from swarmplan.perf.chains import (
    block_chains,
    build_chain_graph,
    build_chain_graph_reference,
    shortest_chain,
    shortest_chain_jk,
    shortest_chain_reference,
)

# Few distinct values (0.1 + 0.2 ≠ 0.3 in floats) so exact ties and one-ulp near-ties are frequent.
WEIGHTS = [0.1, 0.2, 0.3, 0.5, 1.0, 1.5, 2.0, np.inf]


@st.composite
def placements(draw):
    L, _, start, m = draw_spans(draw, 14)
    return L, start, m


def kernels():
    """The compiled kernels and their plain-Python bodies (the same code run without numba)."""
    out = [("python", chains._jk_kernel.py_func if hasattr(chains._jk_kernel, "py_func") else chains._jk_kernel)]
    if hasattr(chains._jk_kernel, "py_func"):
        out.append(("numba", chains._jk_kernel))
    return out


@settings(max_examples=200, deadline=None)
@given(placements())
def test_vectorised_graph_equals_reference(p):
    L, start, m = p
    g, r = build_chain_graph(start, m, L), build_chain_graph_reference(start, m, L)
    for field in ("order", "src", "dst", "k", "first_edge", "last_edge", "is_last"):
        assert np.array_equal(getattr(g, field), getattr(r, field)), field


@settings(max_examples=200, deadline=None)
@given(placements(), st.data())
def test_compiled_shortest_chain_equals_reference(p, data):
    L, start, m = p
    g = build_chain_graph(start, m, L)
    w = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS), min_size=g.n_edges, max_size=g.n_edges)), dtype=float)
    sink = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS[:-1]), min_size=len(m), max_size=len(m))))
    for s in (None, sink):
        assert shortest_chain(g, w, s) == shortest_chain_reference(g, w, s)


@settings(max_examples=250, deadline=None)
@given(placements(), st.data())
def test_block_dp_equals_edge_reference(p, data):
    L, start, m = p
    g = build_chain_graph(start, m, L)
    bc = block_chains(start, m, L)
    w = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS), min_size=bc.n_slots, max_size=bc.n_slots)), dtype=float)
    sink = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS[:-1]), min_size=len(m), max_size=len(m))))
    for s in (None, sink):
        expected = shortest_chain_reference(g, w[bc.edge_slots(g)], s)
        for name, kernel in kernels():
            orig = chains._jk_kernel
            chains._jk_kernel = kernel
            try:
                assert shortest_chain_jk(bc, w, s) == expected, name
            finally:
                chains._jk_kernel = orig


def test_near_tie_goes_to_lowest_index_not_lowest_distance():
    """Two predecessors whose distances differ by one ulp but whose sums round equal: the lower index wins,
    as in the edge-by-edge definition, even though it is not the cheapest server of its group."""
    # L = 2; servers 0 and 1 hold block 1, server 2 holds block 2. dist_0 = 0.1 + 0.2, dist_1 = 0.3 (smaller).
    start, m, L = np.array([1, 1, 2]), np.array([1, 1, 1]), 2
    bc = block_chains(start, m, L)
    w = np.zeros(bc.n_slots)
    w[bc.slots([0, 1, 2], [1, 1, 1])] = [0.1 + 0.2, 0.3, 1e3]
    assert 0.1 + 0.2 > 0.3 and (0.1 + 0.2) + 1e3 == 0.3 + 1e3
    g = build_chain_graph(start, m, L)
    expected = shortest_chain_reference(g, w[bc.edge_slots(g)])
    assert expected[1] == [0, 2]
    assert shortest_chain_jk(bc, w) == expected


def test_jk_slots_cover_each_server_block_count():
    bc = block_chains(np.array([1, 0, 2]), np.array([2, 0, 2]), 3)
    assert bc.slot_server.tolist() == [0, 0, 2, 2]
    assert bc.slot_k.tolist() == [1, 2, 1, 2]
    assert bc.group_start.tolist() == [0, 0, 0, 1, 2]  # server 0 ends at 2, server 2 at 3


@pytest.mark.parametrize("n", [2000])
def test_block_dp_is_linear_in_servers(n):
    """No edge list: a 2,000-server placement's slots are Σ m_j, not the ~n²m/L edges of the full graph."""
    rng = np.random.default_rng(0)
    L = 70
    m = rng.integers(1, 6, size=n)
    start = np.array([rng.integers(1, L - k + 2) for k in m])
    bc = block_chains(start, m, L)
    assert bc.n_slots == m.sum()
    cost, servers, blocks = shortest_chain_jk(bc, bc.slot_k.astype(float))
    assert sum(blocks) == L and cost == pytest.approx(L)


@settings(max_examples=200, deadline=None)
@given(placements(), st.data())
def test_gca_equals_edge_list_reference(p, data):
    from swarmplan.placement.types import Placement
    from swarmplan.routing.gca import gca, gca_reference

    L, start, m = p
    n = len(m)
    slots = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    tau_c = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS[:-1]), min_size=n, max_size=n)))
    tau_p = np.array(data.draw(st.lists(st.sampled_from(WEIGHTS[:-1]), min_size=n, max_size=n)))
    pl = Placement("x", start, m, slots, "proposed")
    expected = gca_reference(pl, L, tau_c, tau_p)
    kernel = chains._jk_incremental
    for variant in [kernel, getattr(kernel, "py_func", kernel)]:
        chains._jk_incremental = variant
        try:
            assert gca(pl, L, tau_c, tau_p) == expected
        finally:
            chains._jk_incremental = kernel


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.3, 1.0, 2.5, 7.0]), min_size=1, max_size=40), st.data())
def test_window_rules_equal_their_definitions(vals, data):
    from swarmplan.placement.windows import (
        lexicographic_min_window,
        lexicographic_min_window_reference,
        max_sum_window_touching,
        max_sum_window_touching_reference,
    )

    v = np.array(vals)
    width = data.draw(st.integers(1, len(v)))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(v), max_size=len(v))))
    assert lexicographic_min_window(v, width) == lexicographic_min_window_reference(v, width)
    from swarmplan.placement import windows

    kernel = windows._lex_min_window_kernel
    assert getattr(kernel, "py_func", kernel)(v, width) == lexicographic_min_window_reference(v, width)
    assert windows._lex_min_window_numpy(v, width) == lexicographic_min_window_reference(v, width)
    assert max_sum_window_touching(v, width, mask) == max_sum_window_touching_reference(v, width, mask)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.3, 1.0, 2.5]), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from([0.0, 0.1, 0.2, 0.3, 1.0, 3.0])), min_size=1, max_size=25),
)
def test_greedy_window_loop_equals_one_window_rule_per_server(vals, servers):
    """PETALS' joins and CG-BP after K: each server in turn takes the reference window and adds its amount."""
    from swarmplan.placement import windows

    n = len(servers)
    widths = np.array([min(w, len(vals)) for w, _ in servers], dtype=np.int64)
    amounts = np.array([a for _, a in servers])
    order = np.random.default_rng(len(vals)).permutation(n)
    expected_vals, expected = np.array(vals), np.zeros(n, dtype=np.int64)
    for j in order.tolist():
        if widths[j] > 0:
            s = windows.lexicographic_min_window_reference(expected_vals, int(widths[j]))
            expected[j] = s
            expected_vals[s : s + widths[j]] += amounts[j]
    kernel = windows._take_windows_kernel
    for run in (windows.take_windows, getattr(kernel, "py_func", kernel)):
        got_vals, got = np.array(vals), np.zeros(n, dtype=np.int64)
        run(got_vals, order, widths, amounts, got)
        assert np.array_equal(got, expected) and np.array_equal(got_vals, expected_vals)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_gca_lazy_search_equals_reference_on_larger_tied_swarms(seed):
    """Dozens of servers with a handful of equal costs: many chains, ties in every group, bounds that go
    stale in the heaps (the lazy search of docs/model.md §14.2 against the edge-list definition)."""
    from swarmplan.placement.types import Placement
    from swarmplan.routing.gca import gca, gca_reference

    rng = np.random.default_rng(seed)
    L, n = int(rng.integers(2, 9)), int(rng.integers(10, 60))
    m = rng.integers(1, L + 1, size=n)
    start = np.array([rng.integers(1, L - k + 2) for k in m])
    pl = Placement("x", start, m, rng.integers(0, 9, size=n), "proposed")
    tau_c, tau_p = rng.choice([0.1, 0.2, 0.3], size=n), rng.choice([0.1, 0.2, 0.3], size=n)
    assert gca(pl, L, tau_c, tau_p) == gca_reference(pl, L, tau_c, tau_p)
