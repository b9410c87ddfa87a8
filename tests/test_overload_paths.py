"""The overload fast paths (issue 15, docs/model.md §9.5, §13.4.1) decide exactly as the straightforward
computation on random slot states drawn from a seeded generator: the kept slot waits against asking the book
for every slot, the book's bulk query against its booking scan, PETALS' kept penalties and chains against
routing afresh, and Opt RR's incremental passes against one full pass per candidate wait."""

import numpy as np
import pytest
from conftest import perf_of

from swarmplan.perf.chains import block_chains, opt_rr_chain
from swarmplan.placement.petals import petals_placement
from swarmplan.routing.optrr import opt_rr_chain_fast
from swarmplan.routing.petals import PetalsRouter
from swarmplan.routing.slots import SlotBook
from swarmplan.routing.wsrr import WsRrRouter

PM = perf_of("paper-abvt", 0, ["servers.count=12"])


class PlainView:
    """The slot state without the book's versions: what a live client offers (routers must ask afresh)."""

    def __init__(self, book: SlotBook):
        self._b = book
        self.capacity, self.sessions = book.capacity, book.sessions

    def free(self, j):
        return self._b.free(j)

    def wait_ms(self, j, k, now):
        return self._b.wait_ms_reference(j, k, now)

    def is_up(self, j):
        return self._b.is_up(j)

    @property
    def n_down(self):
        return self._b.n_down


def crowded_wsrr(rng):
    """A PETALS placement of PM with 1/40 of its cache slots (so requests wait), its WS-RR router, two slot
    books (a router may meet a second one) and the largest span."""
    pl = petals_placement(PM, rng=rng)
    pl = type(pl)(pl.method, pl.start, pl.n_blocks, np.maximum(pl.cache_slots // 40, 1), pl.memory_model)
    return pl, WsRrRouter(PM, pl), [SlotBook(pl.cache_slots), SlotBook(pl.cache_slots)], int(pl.n_blocks.max())


def churn_step(rng, book: SlotBook, r: int, now: float, n: int, kmax: int) -> None:
    """One random change: book a random set of servers, release a holder, or take a server down / up."""
    x = rng.random()
    if x < 0.6 or not book.active_requests:
        servers = sorted(rng.choice(n, size=int(rng.integers(1, min(n, 4) + 1)), replace=False).tolist())
        servers = [j for j in servers if book.is_up(j)]
        if servers:
            ks = rng.integers(1, kmax + 1, size=len(servers)).tolist()
            book.book(r, now + float(rng.choice([rng.exponential(500.0), 250.0])), servers, ks)  # ties in completions
    elif x < 0.9:
        book.release(int(rng.choice(list(book._chains))))
    else:
        j = int(rng.integers(n))
        if book.is_up(j):
            for q in book.holders(j):
                book.release(q)
            book.set_down(j)
        else:
            book.set_up(j)


@pytest.mark.parametrize("seed", range(4))
def test_kept_slot_waits_equal_asking_every_slot(seed):
    rng = np.random.default_rng(seed)
    pl, router, books, kmax = crowded_wsrr(rng)
    now, seen_wait = 0.0, 0
    for r in range(300):
        book = books[int(rng.random() < 0.2)]
        now += float(rng.exponential(50.0))
        churn_step(rng, book, r, now, PM.n_servers, kmax)
        for units in (1, 3):
            got = router.slot_waits(book, now, units)
            want = router.slot_waits_reference(PlainView(book), now, units)
            assert np.array_equal(got, want)
            assert np.array_equal(router.edge_waits(book, now, units), router.edge_waits_reference(PlainView(book), now, units))
            seen_wait += bool((want > 0).any())
    assert seen_wait > 100  # the states were crowded


@pytest.mark.parametrize("seed", range(3))
def test_bulk_ready_times_equal_the_booking_scan(seed):
    rng = np.random.default_rng(seed)
    book = SlotBook(np.array([3, 8, 40, 0, 12]))
    for r in range(200):
        churn_step(rng, book, r, float(r), 5, 6)
        now = float(r) + 0.5
        for j in range(5):
            ks = list(range(1, 45))
            short = [k for k in ks if book.free(j) < k]
            ready = book.ready_ms_many(j, short) if short else []
            want = [book.wait_ms_reference(j, k, now) for k in short]
            assert [t - now for t in ready] == want
            assert [book.wait_ms(j, k, now) for k in ks] == [book.wait_ms_reference(j, k, now) for k in ks]


@pytest.mark.parametrize("cache_test", ["petals", "authors"])
@pytest.mark.parametrize("seed", range(3))
def test_petals_kept_penalties_route_as_afresh(seed, cache_test):
    rng = np.random.default_rng(seed)
    pl = petals_placement(PM, rng=rng)
    pl = type(pl)(pl.method, pl.start, pl.n_blocks, np.maximum(pl.cache_slots // 30, pl.n_blocks), pl.memory_model)
    caps = (pl.cache_slots // np.maximum(pl.n_blocks, 1)).tolist()
    kept = PetalsRouter(PM, pl, cache_test, caps)
    fresh = PetalsRouter(PM, pl, cache_test, caps)
    per_token = PetalsRouter(PM, pl, cache_test, caps)
    per_token_fresh = PetalsRouter(PM, pl, cache_test, caps)
    per_token._units_per_token = per_token_fresh._units_per_token = True  # units = l_in + l_out vary per request
    book = SlotBook(pl.cache_slots)
    kmax = int(pl.n_blocks.max())
    now, detours = 0.0, 0
    for r in range(300):
        now += float(rng.exponential(50.0))
        churn_step(rng, book, r, now, PM.n_servers, kmax)
        for _ in range(int(rng.integers(1, 3))):  # repeated asks with nothing changed reuse the kept chain
            l_out = int(rng.choice([PM.output_tokens, 32]))
            got = kept.route(book, now, 0, PM.input_tokens, l_out)
            want = fresh.route(PlainView(book), now, 0, PM.input_tokens, l_out)
            assert (got.servers, got.processed, got.waits_ms, got.units) == (
                want.servers,
                want.processed,
                want.waits_ms,
                want.units,
            )
            detours += got.servers != kept.static_route(0, PM.input_tokens, l_out)[0]
            a = per_token.route(book, now, 0, 1, int(rng.integers(0, 2)))
            b = per_token_fresh.route(PlainView(book), now, 0, 1, a.units - 1)
            assert (a.servers, a.processed, a.waits_ms) == (b.servers, b.processed, b.waits_ms)
    assert detours > 20  # penalties moved the chain off the static optimum often


@pytest.mark.parametrize("seed", range(8))
def test_opt_rr_incremental_passes_equal_a_pass_per_wait(seed):
    rng = np.random.default_rng(seed)
    pl = petals_placement(PM, rng=rng)
    bc = block_chains(pl.start, pl.n_blocks, PM.L)
    for _ in range(40):
        base = rng.integers(1, 6, size=bc.n_slots).astype(float)  # small integers: many ties
        if rng.random() < 0.2:  # negative weights too (no early stop then)
            base -= 2.0
        base[rng.random(bc.n_slots) < 0.1] = np.inf
        waits = rng.integers(0, 5, size=bc.n_slots).astype(float) * float(rng.choice([1.0, 0.1]))
        waits[rng.random(bc.n_slots) < float(rng.choice([0.0, 0.3, 0.9]))] = np.inf
        got = opt_rr_chain_fast(bc, base, waits)
        assert got == opt_rr_chain(bc, base, waits)
    assert opt_rr_chain_fast(bc, np.full(bc.n_slots, np.inf), np.zeros(bc.n_slots)) == (float("inf"), [], [])


def test_backoff_jumps_to_the_same_sum_as_adding_steps():
    from swarmplan.perf.timing import backoff_ms, backoff_ms_reference

    rng = np.random.default_rng(7)
    knobs = [(1000.0, 60_000.0), (1500.0, 60_000.0), (0.3, 7.0), (70_000.0, 60_000.0), (1000.0, 1000.0), (2.5, 40.0)]
    for first, cap in knobs:
        edges = [1.0, 183_000.0, 183_000.5, 243_000.0, 0.0, -1.0, 200 * cap, 200 * cap + 0.5]
        for w in [*(cap * rng.exponential(60.0, size=200)), *edges]:
            assert backoff_ms(float(w), first, cap) == backoff_ms_reference(float(w), first, cap)
    assert backoff_ms(184_000.0) == 243_000.0  # 1, 3, 7, … 123, 183, 243 s
