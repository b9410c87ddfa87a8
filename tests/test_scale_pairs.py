"""Server RTTs kept per node and PETALS' routing without an edge list (issue 15) give exactly what the
straightforward forms give: the dense servers × servers matrix, and shortest paths edge by edge."""

import numpy as np
from conftest import draw_spans, perf_of
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmplan.perf import chains
from swarmplan.perf.chains import (
    SOURCE,
    block_chains,
    build_chain_graph,
    shortest_chain_pairs,
    shortest_chain_reference,
)
from swarmplan.placement.petals import petals_placement
from swarmplan.routing.base import Router
from swarmplan.routing.petals import PetalsRouter
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.server_rtt import ServerRtt

# Few distinct values (0.1 + 0.2 ≠ 0.3 in floats): exact ties and one-ulp near-ties are frequent.
VALUES = [0.1, 0.2, 0.3, 0.5, 1.0]


@st.composite
def swarms(draw):
    """A random placement with servers on a few nodes, pair and own weights, fits, penalties and sinks."""
    L, n, start, m = draw_spans(draw, 24)
    V = draw(st.integers(1, 4))

    def floats(size, pool=VALUES):
        return np.array(draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size)), dtype=float)

    node = np.array(draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n)), dtype=np.int64)
    hop = floats(V * V).reshape(V, V)  # hop[node_i, node_j], not symmetric
    return (
        L,
        start,
        m,
        node,
        hop,
        floats(n),
        floats(n),
        floats(n, [0.0, 0.0, 0.3, 1e4, np.inf]),
        floats(n),
        draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)),
    )


def kernels():
    """The compiled kernel and its plain-Python body (the same code run without numba)."""
    out = [getattr(chains._pair_kernel, "py_func", chains._pair_kernel)]
    if hasattr(chains._pair_kernel, "py_func"):
        out.append(chains._pair_kernel)
    return out


@settings(max_examples=300, deadline=None)
@given(swarms())
def test_pair_dp_equals_edge_by_edge_definition(s):
    L, start, m, node, hop, hop_src, tau, pen, sink, cap = s
    cap = np.array(cap)
    g = build_chain_graph(start, m, L)
    bc = block_chains(start, m, L)
    # The definition: a weight per edge of the full graph, as PETALS' router wrote it before (static + penalty).
    pair = np.where(g.src == SOURCE, hop_src[g.dst], hop[node[np.maximum(g.src, 0)], node[g.dst]])
    w = np.where(g.k <= cap[g.dst], pair + tau[g.dst] * g.k, np.inf) + pen[g.dst]
    own, fits = tau[bc.slot_server] * bc.slot_k, bc.slot_k <= cap[bc.slot_server]
    for sk in (None, sink):
        expected = shortest_chain_reference(g, w, sk)
        for kernel in kernels():
            orig = chains._pair_kernel
            chains._pair_kernel = kernel
            try:
                assert shortest_chain_pairs(bc, node, hop, hop_src, own, fits, pen, sk) == expected
            finally:
                chains._pair_kernel = orig


def test_a_near_tie_goes_to_the_lower_index_not_the_closer_server():
    """Servers 0 and 1 hold block 1 at distances 0.1 + 0.2 and 0.3 (one ulp apart; 1 is read first, by
    distance); their sums into server 2 round equal, so the lower index wins as edge by edge."""
    start, m, L = np.array([1, 1, 2]), np.array([1, 1, 1]), 2
    bc, g = block_chains(start, m, L), build_chain_graph(start, m, L)
    node, hop = np.zeros(3, dtype=np.int64), np.zeros((1, 1))
    hop_src, tau = np.array([0.1 + 0.2, 0.3, 0.0]), np.array([0.0, 0.0, 1e3])
    assert 0.1 + 0.2 > 0.3 and (0.1 + 0.2) + 1e3 == 0.3 + 1e3
    pair = np.where(g.src == SOURCE, hop_src[g.dst], 0.0)
    expected = shortest_chain_reference(g, pair + tau[g.dst] * g.k)
    assert expected[1] == [0, 2]
    own, fits = tau[bc.slot_server] * bc.slot_k, np.ones(bc.n_slots, dtype=bool)
    for kernel in kernels():
        orig = chains._pair_kernel
        chains._pair_kernel = kernel
        try:
            assert shortest_chain_pairs(bc, node, hop, hop_src, own, fits) == expected
        finally:
            chains._pair_kernel = orig


def test_server_rtt_indexes_like_the_dense_matrix():
    rng = np.random.default_rng(0)
    node_ms = rng.integers(1, 9, size=(5, 5)).astype(float)
    node_ms[1, 3] = node_ms[3, 1] = np.nan
    np.fill_diagonal(node_ms, 0.0)
    node = rng.integers(5, size=40)
    rtt, dense = ServerRtt(node, node_ms), node_ms[np.ix_(node, node)]
    assert np.array_equal(np.asarray(rtt), dense, equal_nan=True) and rtt.shape == (40, 40)
    i, j = rng.integers(40, size=30), rng.integers(40, size=30)
    assert np.array_equal(rtt[i, j], dense[i, j], equal_nan=True)
    assert np.array_equal(rtt[3, 7], dense[3, 7], equal_nan=True) and np.ndim(rtt[3, 7]) == 0
    mask = rng.random((40, 40)) < 0.5
    assert np.array_equal(rtt[mask], dense[mask], equal_nan=True)
    off = ~np.eye(40, dtype=bool)
    assert rtt.unknown_pairs() == int(np.isnan(dense[off]).sum() // 2)
    assert np.array_equal(np.asarray(ServerRtt.dense(dense)), dense, equal_nan=True)


def test_realized_rtts_equal_the_dense_construction():
    """Servers on nodes and servers listed with client RTTs only: per node, the same values as filling the
    servers × servers matrix pair by pair (network RTT between nodes, 0 on the diagonal, NaN otherwise)."""
    sc, base = load_scenario("paper-abvt", ["servers.count=9"])
    doc = sc.model_dump()
    listed = [{"name": f"x{i}", "gpu": "a100-80gb", "rtt_ms": {"client": 10.0 + i}} for i in range(3)]
    sw = realize(sc, np.random.default_rng(4), base)
    on_nodes = [
        {"name": name, "gpu": gpu, "node": loc} for name, gpu, loc in zip(sw.server_names, sw.server_gpus, sw.server_locations)
    ]
    doc["servers"] = on_nodes[:5] + listed + on_nodes[5:]
    doc["clients"] = [{"name": "client", "node": sw.client_locations[0]}]
    from swarmplan.scenario.models import Scenario
    from swarmplan.scenario.network import load_topology

    mixed = realize(Scenario.model_validate(doc), np.random.default_rng(0), base)
    net = load_topology(sc.network.topology, sc.network.delay_us_per_km, base)
    where = [net.names.index(s["node"]) if "node" in s else None for s in doc["servers"]]
    n = len(where)
    dense = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if i == j:
                dense[i, j] = 0.0
            elif where[i] is not None and where[j] is not None:
                dense[i, j] = net.rtt_raw_ms[where[i], where[j]]
    assert np.array_equal(np.asarray(mixed.rtt_raw_server_ms), dense, equal_nan=True)
    assert mixed.unknown_server_rtt_pairs == 3 * 9 + 3  # each listed server to the 9 on nodes, and among the 3


def test_shared_nodes_keep_a_node_matrix_not_a_server_matrix():
    sc, base = load_scenario("scale-10k", ["servers.count=2000"])
    rtt = realize(sc, np.random.default_rng(0), base).rtt_raw_server_ms
    assert rtt.shape == (2000, 2000) and rtt.node_ms.shape[0] <= 320


def test_petals_router_routes_as_on_the_edge_list():
    """PETALS' static route and penalised routes on random states equal the edge-list computation
    (static weights per edge, Router.static_route's shortest path, penalty added per edge)."""
    pm = perf_of("scale-10k", 1, ["servers.count=150"])
    rng = np.random.default_rng(2)
    pl = petals_placement(pm, rng=np.random.default_rng(0))
    router = PetalsRouter(pm, pl)
    servers, processed, base = router.static_route(0, pm.input_tokens, pm.output_tokens)
    assert Router.static_route(PetalsRouter(pm, pl), 0, pm.input_tokens, pm.output_tokens)[:2] == (servers, processed)
    g = router.graph
    static = np.where(router.edge_fits, router.static_weights(0, pm.input_tokens, pm.output_tokens), np.inf)
    for _ in range(20):
        pen = rng.choice([0.0, router.penalty_ms, np.inf], size=pm.n_servers, p=[0.6, 0.3, 0.1])
        expected = shortest_chain_reference(g, static + pen[g.dst], router.sink_weights(0))
        assert router.penalised_chain(0, base, pen) == expected
    book = SlotBook(pl.cache_slots)  # and the policy itself on a filling book
    for t in range(60):
        r = router.route(book, float(t), 0, pm.input_tokens, pm.output_tokens)
        pen = np.array([router.penalty_ms if router.lacks_cache(book, j) else 0.0 for j in range(pm.n_servers)])
        if (pen[servers] == 0).all():
            expected = (servers, processed)
        else:
            expected = shortest_chain_reference(g, static + pen[g.dst], router.sink_weights(0))[1:]
        assert (r.servers, r.processed) == expected
        book.book(t, 1e9, r.servers, r.need)
    assert t == 59 and pen.any()  # the book filled up: penalised routes were exercised
