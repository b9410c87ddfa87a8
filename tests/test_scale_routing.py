"""Router hot paths (issue 15) decide exactly as the straightforward computation on random slot states:
WS-RR and Opt RR on (server, k) slots against the edge-list definition, and the slot book's wait curves
against the booking scan."""

import numpy as np
from conftest import perf_of
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmplan.perf.chains import shortest_chain_reference
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.petals import petals_placement
from swarmplan.routing.optrr import OptRrRouter
from swarmplan.routing.slots import SlotBook
from swarmplan.routing.wsrr import WsRrRouter

PM = perf_of("paper-abvt", 0, ["servers.count=12"])


def reference_route(router, book, now, client, l_in, l_out, opt_rr: bool):
    """The routers as defined before the slot fast paths: weights per edge, edge-by-edge shortest paths."""
    g = router.graph
    base = np.where(router.edge_fits, router.static_weights(client, l_in, l_out), np.inf)
    _, servers, processed = shortest_chain_reference(g, base)
    if all(book.free(j) >= k for j, k in zip(servers, processed)):
        return servers, processed, [0.0] * len(servers)
    waits = router.edge_waits_reference(book, now)
    if opt_rr:
        best = (np.inf, [], [])
        for w in np.unique(waits[np.isfinite(base) & np.isfinite(waits)]):
            cost, chain, blocks = shortest_chain_reference(g, np.where(waits <= w, base, np.inf))
            if chain and cost + w < best[0]:
                best = (cost + w, chain, blocks)
        _, servers, processed = best
    else:
        _, servers, processed = shortest_chain_reference(g, base + waits)
    return servers, processed, [book.wait_ms_reference(j, k, now) for j, k in zip(servers, processed)]


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["cg-bp", "petals"]), st.booleans())
def test_slot_routers_equal_edge_definition_on_random_states(seed, placement, opt_rr):
    rng = np.random.default_rng(seed)
    R = int(rng.integers(1, 6))
    pl = cg_bp(PM, R) if placement == "cg-bp" else petals_placement(PM, rng=rng)
    router = (OptRrRouter if opt_rr else WsRrRouter)(PM, pl)
    book = SlotBook(pl.cache_slots)
    now, waited = 0.0, 0
    for r in range(60):  # arrivals at random times, each booked on the reference chain for a random time
        now += float(rng.exponential(200.0))
        for done in [q for q in list(book._chains) if book._chains[q][0] <= now]:
            book.release(done)
        l_out = int(rng.choice([PM.output_tokens, 32]))
        got = router.route(book, now, 0, PM.input_tokens, l_out)
        want = reference_route(router, book, now, 0, PM.input_tokens, l_out, opt_rr)
        assert (got.servers, got.processed, got.waits_ms) == want
        waited += max(want[2], default=0.0) > 0
        if not want[0]:
            continue
        book.book(r, now + max(want[2]) + float(rng.exponential(120_000.0)), want[0], want[1])
    assert waited >= 1  # the states were crowded enough to leave the no-wait shortcut


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), st.floats(0, 100)), max_size=25),
    st.lists(st.integers(0, 2), max_size=10),
    st.floats(0, 50),
)
def test_wait_curves_equal_the_booking_scan(bookings, releases, now):
    book = SlotBook(np.array([3, 5, 8, 0]))
    for r, (j, k, done) in enumerate(bookings):
        book.book(r, done, [j], [k])
        for q in releases[:1]:
            if book.holds(q) and q != r:
                book.release(q)
        for jj in range(4):
            for kk in range(0, 10):
                assert book.wait_ms(jj, kk, now) == book.wait_ms_reference(jj, kk, now)


def test_scale_10k_shares_nodes_and_lowers_with_set():
    """More servers than anchors: servers at one anchor share its RTTs (0 between them); count is settable."""
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario("scale-10k", ["servers.count=700"])
    sw = realize(sc, np.random.default_rng(3), base)
    assert sw.n_servers == 700 and len(set(sw.server_locations)) < 320
    loc = np.array(sw.server_locations)
    same = loc[:, None] == loc[None, :]
    rtt = np.asarray(sw.rtt_raw_server_ms)
    assert (rtt[same] == 0).all() and (rtt[~same] > 0).all()
    first = {name: j for j, name in reversed(list(enumerate(sw.server_locations)))}
    assert all(sw.rtt_raw_client_ms[0, j] == sw.rtt_raw_client_ms[0, first[name]] for j, name in enumerate(loc))
    assert sorted(set(sw.server_gpus)) == ["a100-80gb", "mig-1g-10gb"] and sw.server_gpus.count("a100-80gb") == 140
