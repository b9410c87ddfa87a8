"""The simulator: hand-computed tiny runs for both policies, invariants, the bounded-load guarantee."""

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.methods.registry import METHODS, MethodContext, allocation_delay_ms
from swarmplan.placement.types import Placement
from swarmplan.routing.petals import PetalsRouter
from swarmplan.routing.slots import SlotBook
from swarmplan.routing.wsrr import WsRrRouter
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.workload import Workload, draw_workload
from swarmplan.sim.engine import running_slots_peak, simulate
from swarmplan.sim.run import run_policy

# Tiny model: L = 2 blocks of 1 GB, s_c = 0.1 GB (1e6 B/token × 100 tokens), l_in = 10, l_out = 90,
# o = 100 ms, input overhead 0.7049·10 + 67 = 74.049 ms, d_init = 70 ms, prefill 5 ms per block.
RTT_IN_EXTRA = 0.7049 * 10 + 67


def tiny(rtts, taus):
    gpus = [
        {"memory_gb": 10.0, "decode_ms_per_block": t, "prefill_ms_per_block": 5.0, "prefill_ms_per_token_per_block": 0.0}
        for t in taus
    ]
    return perf_of(explicit_scenario(gpus, rtts, n_blocks=2))


def whole_model_on_each(n, slots):
    return Placement("hand", np.ones(n, dtype=np.int64), np.full(n, 2), np.array(slots), "proposed")


def workload(times_ms):
    n = len(times_ms)
    return Workload(np.array(times_ms, dtype=float), np.full(n, 10), np.full(n, 90), np.zeros(n, dtype=np.int64))


def service(rtt_raw, tau):
    """(t_1, decode) of a one-server chain processing both blocks, from docs/model.md §3.3 by hand."""
    t1 = (rtt_raw + RTT_IN_EXTRA) + 5.0 * 2
    decode = 89 * ((rtt_raw + 100) + tau * 2)
    return t1, decode


def test_one_server_second_request_waits_with_backoff():
    pm = tiny([0.0], [1.0])
    res = simulate(pm, whole_model_on_each(1, [2]), workload([0, 1000]), WsRrRouter(pm, whole_model_on_each(1, [2])))
    t1, dec = service(0.0, 1.0)
    d1 = t1 + dec + 70
    assert res.response_ms[0] == pytest.approx(d1)
    # Request 2 waits until request 1 completes: W = d1 − 1000 = 8232 ms → back-off 1+2+4+8 = 15 s.
    assert res.raw_wait_ms[1] == pytest.approx(d1 - 1000)
    assert res.wait_ms[1] == 15_000
    assert res.response_ms[1] == pytest.approx(15_000 + d1)


@pytest.mark.parametrize("slow_rtt, expect_server, expect_wait", [(50.0, 1, 0.0), (500.0, 0, 15_000.0)])
def test_wsrr_trades_waiting_against_a_slower_server(slow_rtt, expect_server, expect_wait):
    pm = tiny([0.0, slow_rtt], [1.0, 2.0])
    pl = whole_model_on_each(2, [2, 2])
    res = simulate(pm, pl, workload([0, 1000]), WsRrRouter(pm, pl))
    assert res.chains[0] == (0,)
    # Waiting at A costs 8232 ms + A's service 9162 ms = 17394 ms; B's service is 13840 ms at 50 ms RTT
    # (so B wins) and 54340 ms at 500 ms (so waiting at A wins).
    assert res.chains[1] == (expect_server,)
    assert res.wait_ms[1] == expect_wait
    t1, dec = service([0.0, slow_rtt][expect_server], [1.0, 2.0][expect_server])
    assert res.response_ms[1] == pytest.approx(expect_wait + t1 + dec + 70)


@pytest.mark.parametrize("cache_test", ["petals", "authors"])
def test_petals_penalty_steers_away_from_a_full_server(cache_test):
    pm = tiny([0.0, 50.0], [1.0, 2.0])
    pl = whole_model_on_each(2, [2, 2])
    router = PetalsRouter(pm, pl, cache_test=cache_test, session_capacity=[1, 1])
    res = simulate(pm, pl, workload([0, 1000, 60_000]), router)
    # PETALS' cost: A = 0 + 18 + 1·2 = 20 ms, B = 25 + 18 + 2·2 + 25 = 72 ms → A first; then A is full,
    # the 10 s penalty fires and request 2 goes to B; by 60 s A is free again.
    assert [c[0] for c in res.chains] == [0, 1, 0]
    assert res.wait_ms.tolist() == [0, 0, 0]
    t1, dec = service(50.0, 2.0)
    assert res.response_ms[1] == pytest.approx(t1 + dec + 70)


def test_cache_tests_differ_when_a_server_is_overbooked():
    pm = tiny([0.0, 50.0], [1.0, 2.0])
    pl = whole_model_on_each(2, [2, 2])
    book = SlotBook(pl.cache_slots)
    book.book(0, 1e9, [0], [2])
    book.book(1, 1e9, [0], [2])  # two sessions on a server that admits one (as waiting requests do)
    assert PetalsRouter(pm, pl, "petals", [1, 1]).lacks_cache(book, 0)
    assert not PetalsRouter(pm, pl, "authors", [1, 1]).lacks_cache(book, 0)  # 1 − 2 ≠ 0: the authors' bug


# --- invariants on the paper scenarios -----------------------------------------------------------


def run_all(name="paper-abvt", seed=0, n=150, profile="fair", overrides=None, fast=True):
    sc, base = load_scenario(name, overrides or [])
    pm = perf_of(name, seed, overrides)
    wl = draw_workload(sc.workload, 1, np.random.default_rng(seed), n)
    ctx = MethodContext(pm, np.random.default_rng(seed + 1), sc.workload.rate_per_s, sc.placement.R, use_fast_path=fast)
    out = {}
    for name_, m in METHODS.items():
        pl, router = m.build(ctx)
        out[name_] = run_policy(pm, pl, wl, router, allocation_delay_ms(m, profile, pm), name_)
    return pm, out


@pytest.mark.parametrize("profile", ["fair", "paper"])
def test_invariants_under_load(profile):
    pm, results = run_all(profile=profile, overrides=["workload.rate_per_s=1.0"])
    for res in results.values():
        assert (running_slots_peak(res) <= res.placement.cache_slots).all(), "slots never exceed capacity"
        assert all(sum(p) == pm.L for p in res.processed), "every request gets all blocks, in order"
        assert np.isfinite(res.completion_ms).all() and len(res.chains) == 150
        parts = res.wait_ms + res.prefill_ms + res.decode_ms + res.delay_ms
        assert res.response_ms == pytest.approx(parts)
        # Recompute each request's service from the performance model, independently of the engine.
        for r in range(0, 150, 17):
            chain, ks = list(res.chains[r]), np.array(res.processed[r])
            t1 = np.sum(pm.rtt_in_ms[0, chain] + pm.tau_in_ms[chain] * ks)
            tok = np.sum(pm.rtt_ms[0, chain] + pm.tau_ms[chain] * ks)
            assert res.prefill_ms[r] == pytest.approx(t1)
            assert res.decode_ms[r] == pytest.approx(127 * tok)


def test_bounded_load_no_wait_and_bound_u():
    """docs/model.md §5.3: with at most R concurrent requests CG-BPRR never waits and decodes within U."""
    pm, results = run_all(overrides=["workload.rate_per_s=0.2", "placement.R=30"], n=200)
    res = results["cg-bprr"]
    assert res.max_concurrency <= res.placement.R
    assert (res.wait_ms == 0).all()
    per_token_decode = res.decode_ms / 127
    assert per_token_decode.max() <= res.placement.bound_ms_per_token + 1e-9


def test_same_seed_same_summary():
    a = {k: v.summary() for k, v in run_all(seed=4, n=80)[1].items()}
    b = {k: v.summary() for k, v in run_all(seed=4, n=80)[1].items()}
    assert a == b


def test_fast_path_gives_exactly_the_full_computation():
    """The cached route shortcut must not change any decision (docs/model.md §8)."""
    over = ["workload.rate_per_s=2.0"]
    _, fast = run_all(overrides=over, n=200)
    _, slow = run_all(overrides=over, n=200, fast=False)
    for name in fast:
        assert fast[name].chains == slow[name].chains
        assert fast[name].response_ms.tolist() == slow[name].response_ms.tolist()


def test_cg_bprr_beats_petals_on_abvt_and_bellcanada():
    for name in ("paper-abvt", "paper-bellcanada"):
        per_token = {m: [] for m in ("petals", "cg-bprr")}
        for seed in range(3):
            _, res = run_all(name, seed, n=100)
            for m in per_token:
                per_token[m].append(res[m].per_token_ms.mean())
        assert np.mean(per_token["cg-bprr"]) < 0.8 * np.mean(per_token["petals"])


def test_petals_retry_client_fails_backs_off_and_reroutes():
    from swarmplan.sim.retry import RetryingClient, simulate_retry

    pm = tiny([0.0, 50.0], [1.0, 2.0])
    pl = whole_model_on_each(2, [2, 2])
    client = RetryingClient(PetalsRouter(pm, pl, session_capacity=[1, 1]))
    res = simulate_retry(pm, pl, workload([0, 100, 200]), client)
    d_a = sum(service(0.0, 1.0)) + 70
    # r0 → A; r1 → B (A lacks cache, 10 s penalty); r2 finds both full, fails and retries after
    # 1, 2, 4, 8 s (t = 1.2, 3.2, 7.2, 15.2 s); A is free from 9.23 s, so it starts on A at 15.2 s.
    assert [c[0] for c in res.chains] == [0, 1, 0]
    assert res.wait_ms.tolist() == [0, 0, 15_000]
    assert res.response_ms[2] == pytest.approx(15_000 + d_a)
    assert (running_slots_peak(res) <= pl.cache_slots).all()
