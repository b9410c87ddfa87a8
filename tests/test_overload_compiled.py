"""The compiled overload paths (issue 15, docs/model.md §9.5, §13.4.1) against their references on random
seeded states: the kept slot instants redone by one walk per server (``routing.ready._redo``, over the book's
booking rows) against the per-slot search of the book's curve and against asking the book for every slot;
the book's rows against its lists; Opt RR on kept instants against one pass per candidate wait."""

import numpy as np
import pytest
from conftest import perf_of
from test_overload_paths import PlainView, churn_step, crowded_wsrr

from swarmplan.perf.chains import block_chains, opt_rr_chain
from swarmplan.placement.petals import petals_placement
from swarmplan.routing.optrr import opt_rr_chain_ready
from swarmplan.routing.parallax import ParallaxRouter
from swarmplan.routing.ready import ReadyTimes
from swarmplan.routing.slots import SlotBook

PM = perf_of("paper-abvt", 0, ["servers.count=12"])


@pytest.mark.parametrize("seed", range(3))
def test_walked_ready_times_equal_the_curve_search_and_the_book(seed):
    rng = np.random.default_rng(seed)
    pl, router, books, kmax = crowded_wsrr(rng)
    kept = {
        (units, compiled): ReadyTimes(router._edge_slots, router.blocks.n_slots, units, compiled)
        for units in (1, 3)
        for compiled in (True, False)
    }
    now, seen_wait = 0.0, 0
    for r in range(300):
        book = books[int(rng.random() < 0.2)]
        now += float(rng.exponential(50.0))
        churn_step(rng, book, r, now, PM.n_servers, kmax)
        if book.done_rows is not None:
            for j in range(PM.n_servers):  # the rows kept hold the same bookings as the lists
                count = book.n_bookings(j)
                assert book.done_rows[j, :count].tolist() == [c for c, _, _ in book.by_server[j]]
                assert book.held_rows[j, :count].tolist() == [k for _, _, k in book.by_server[j]]
        for units in (1, 3):
            want = router.slot_waits_reference(PlainView(book), now, units)
            walked = kept[units, True].waits(book, now)
            assert np.array_equal(walked, kept[units, False].waits(book, now))
            assert np.array_equal(walked, want)
            seen_wait += bool((want > 0).any())
    assert seen_wait > 100  # the states were crowded


def test_rows_widen_and_keep_completion_order():
    book = SlotBook(np.array([5, 5]))
    rng = np.random.default_rng(7)
    done = rng.integers(0, 10, size=40).astype(float)  # ties: order by (completion, request)
    for r, t in enumerate(done.tolist()):
        book.book(r, t, [1], [r % 3 + 1])
        if r == 9:
            assert book.rows()[0].shape[1] == 16  # built from the lists at the first ask
    for r in (0, 17, 39):
        book.release(r)
    want = sorted((t, r, r % 3 + 1) for r, t in enumerate(done.tolist()) if r not in (0, 17, 39))
    assert book.done_rows.shape[1] == 64 and [book.n_bookings(j) for j in (0, 1)] == [0, 37]
    assert book.done_rows[1, :37].tolist() == [t for t, _, _ in want]
    assert book.held_rows[1, :37].tolist() == [k for _, _, k in want]


@pytest.mark.parametrize("seed", range(4))
def test_opt_rr_on_kept_instants_equals_a_pass_per_wait(seed):
    rng = np.random.default_rng(seed)
    pl = petals_placement(PM, rng=rng)
    bc = block_chains(pl.start, pl.n_blocks, PM.L)
    seen_chain = 0
    for _ in range(30):
        base = rng.integers(1, 6, size=bc.n_slots).astype(float)  # small integers: many ties
        base[rng.random(bc.n_slots) < 0.1] = np.inf
        now = float(rng.integers(0, 50)) * 0.5
        ready = now + rng.integers(0, 5, size=bc.n_slots).astype(float) * float(rng.choice([1.0, 0.1]))
        ready[rng.random(bc.n_slots) < float(rng.choice([0.0, 0.3]))] = np.inf
        short = rng.random(bc.n_slots) < float(rng.choice([0.2, 0.7, 1.0]))
        ready[~short] = rng.normal(size=int((~short).sum()))  # stale instants of slots not short: ignored
        waits = np.where(short, ready - now, 0.0)
        total, servers, blocks, chain_waits = opt_rr_chain_ready(bc, base, short, ready, now)
        assert (total, servers, blocks) == opt_rr_chain(bc, base, waits)
        assert chain_waits == waits[bc.slots(servers, blocks)].tolist()
        seen_chain += bool(servers)
    assert seen_chain >= 5  # some states have chains


@pytest.mark.parametrize("seed", range(3))
def test_parallax_least_largest_wait_equals_trying_each_wait(seed):
    """Requests routed and booked as the simulator does (completions after their waits), some released,
    servers failing and returning; the fast router against the one that tries each wait in turn."""
    rng = np.random.default_rng(seed)
    pl = petals_placement(PM, rng=rng)
    pl = type(pl)(pl.method, pl.start, pl.n_blocks, 2 * pl.n_blocks, pl.memory_model)  # two full requests each
    fast, slow = ParallaxRouter(PM, pl), ParallaxRouter(PM, pl, use_fast_path=False)
    book = SlotBook(pl.cache_slots)
    now, waited, failed = 0.0, 0, 0
    for r in range(300):
        now += float(rng.exponential(20.0))
        x = rng.random()
        if x < 0.3 and book.active_requests:
            book.release(int(rng.choice(list(book._chains))))
        elif x < 0.34:
            j = int(rng.integers(PM.n_servers))
            if book.is_up(j):
                for q in book.holders(j):
                    book.release(q)
                book.set_down(j)
        elif x < 0.5 and book.n_down:  # down servers return soon
            book.set_up(int(rng.choice([j for j in range(PM.n_servers) if not book.is_up(j)])))
        client = int(rng.integers(PM.swarm.n_clients))
        try:
            want = slow.route(book, now, client, 10, 90)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                fast.route(book, now, client, 10, 90)
            failed += 1
            continue
        assert fast.route(book, now, client, 10, 90) == want
        waited += any(w > 0 for w in want.waits_ms)
        book.book(r, now + max(want.waits_ms) + float(rng.choice([100.0, rng.exponential(300.0)])), want.servers, want.processed)
    assert waited > 200 and failed < 50  # most routes waited for their chain
