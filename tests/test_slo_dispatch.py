"""SLO-Pack's length-aware central queue (sim.central.SloAwareQueue, docs/capacity.md §5.4), on hand-worked
three-chain swarms: L = 1, service = RTT × l_out (1000, 1500, 3000 ms per token), capacities 2, 1, 3."""

import math

import numpy as np
import pytest
from test_chains import _three_chains, _workload

from swarmplan.routing.gca import Chain
from swarmplan.routing.slopack import DispatchRule, reserved_chains
from swarmplan.scenario.workload import Workload
from swarmplan.sim.central import JffcDispatcher, simulate_central
from swarmplan.sim.engine import running_slots_peak
from swarmplan.sim.long_outputs import limit_trials, resolve_rule, tuning_workload


def _lengths(arrivals, l_out):
    n = len(arrivals)
    return Workload(np.asarray(arrivals, float), np.ones(n, np.int64), np.asarray(l_out, np.int64), np.zeros(n, np.int64), None)


def test_quantile_rule_best_fit_waits_to_meet_and_sends_misses_slow():
    pm, pl, chains = _three_chains()
    arrivals = [0, 1, 2, 3]
    # limit 1600 ms: r0 meets on chains 0 (1000) and 1 (1500) → the slowest that meets, chain 1; r1, r2 only on
    # chain 0; r3 finds only chain 2 free (3000 > 1600) and could still meet on chain 0, so it waits; when
    # chain 0 frees at 1001 it has waited 998 ms: 998 + 1000 > 1600, a miss on every chain → the slowest free
    # place, chain 2 (JFFC would have put r0 on chain 0 and r3 on chain 2 at once).
    res = simulate_central(pm, pl, _workload(arrivals), JffcDispatcher(chains, DispatchRule("response", 1600.0)))
    assert [c[0] for c in res.chains] == [1, 0, 0, 2]
    assert res.wait_ms.tolist() == [0, 0, 0, 1001 - 3]
    jffc = simulate_central(pm, pl, _workload(arrivals), JffcDispatcher(chains))
    assert [c[0] for c in jffc.chains] == [0, 0, 1, 2]
    # limit 2500: r3 still meets after waiting for chain 0 (998 + 1000 ≤ 2500), so it waits for it.
    res = simulate_central(pm, pl, _workload(arrivals), JffcDispatcher(chains, DispatchRule("response", 2500.0)))
    assert res.chains[3][0] == 0 and res.response_ms[3] == pytest.approx(1998.0)


def test_quantile_rule_starts_only_where_the_limit_holds_or_is_lost():
    """Invariant on a Poisson stream with spread lengths: every request starts where it meets the limit, or
    when it could not meet it on any chain; capacities hold; every request is served."""
    pm, pl, chains = _three_chains()
    rng = np.random.default_rng(3)
    n = 400
    arrivals = np.cumsum(rng.exponential(700.0, n))
    l_out = rng.integers(1, 4, n)
    limit = 3200.0
    res = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("response", limit)))
    T = np.array([[ch.service_ms * lo for ch in chains] for lo in l_out])  # service = RTT × l_out here
    k = np.array([c[0] for c in res.chains])
    meets = res.wait_ms + T[np.arange(n), k] <= limit + 1e-9
    lost = res.wait_ms + T.min(axis=1) > limit
    assert np.all(meets | lost)
    assert np.isfinite(res.response_ms).all()
    assert (running_slots_peak(res) <= np.array([2, 1, 3])).all()


def test_per_token_rule_orders_the_queue_by_c_mu():
    """Six requests fill the six places; r6 (l_out = 4) then r7 (l_out = 1) queue. The cμ index 1/(l_out · T)
    puts r7 first: it takes the first free place (chain 0 at 1000 ms), r6 the next (1001 ms); FCFS (JFFC)
    serves r6 first."""
    pm, pl, chains = _three_chains()
    arrivals, l_out = [0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 4, 1]
    res = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("per_token", 1e9)))
    assert [c[0] for c in res.chains[:6]] == [0, 0, 1, 2, 2, 2]  # no waiting while a place is free
    assert res.start_ms[7] == pytest.approx(1000.0) and res.start_ms[6] == pytest.approx(1001.0)
    jffc = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains))
    assert jffc.start_ms[6] == pytest.approx(1000.0) and jffc.start_ms[7] == pytest.approx(1001.0)


def test_slow_place_goes_to_the_least_per_token_penalty():
    """Chain 1 frees first (at 1502 ms: its job has l_out 1) while r6 (l_out 2) and r7 (l_out 1) queue. Its
    per-token penalty over chain 0, (T_r1 − T_r0)/l_out, is 500 ms for both (service ∝ l_out here), so the
    cμ head, r7, takes it; r6 takes chain 0 when it frees at 3000 ms."""
    pm, pl, chains = _three_chains()
    arrivals, l_out = [0, 1, 2, 3, 4, 5, 6, 7], [3, 3, 1, 3, 3, 3, 2, 1]
    res = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("per_token", 1e9)))
    assert res.chains[2][0] == 1 and res.start_ms[7] == pytest.approx(1502.0) and res.chains[7][0] == 1
    assert res.chains[6][0] == 0 and res.start_ms[6] == pytest.approx(3000.0)


def test_reserved_chains_are_the_tier_before_the_largest_speed_jump():
    _, _, chains = _three_chains()  # 1000, 1500, 3000 ms: jumps 1.5 and 2 → chains 0 and 1 reserved
    assert reserved_chains(chains) == [True, True, False]
    flat = [Chain((j,), (1,), 1000.0, 1) for j in range(3)]
    assert reserved_chains(flat) == [False] * 3 and reserved_chains(flat[:1]) == [False]
    steps = [Chain((0,), (1,), 1000.0, 1), Chain((1,), (1,), 3000.0, 1), Chain((2,), (1,), 4000.0, 1)]
    assert reserved_chains(steps) == [True, False, False]


def test_long_outputs_keep_off_the_reserved_chains_and_wait_for_others():
    """Long-output limit 2 (docs/capacity.md §5.5); chains 0 and 1 reserved. r0, r2, r3 (5 tokens) fill chain 2
    although chain 0 is free; r1 and r5 (1 token) take chain 0 at once; r4 (5 tokens) finds chain 2 full and
    waits while reserved places are free, until r0 completes at 5 × 3000 ms. Without a limit r0 takes chain 0."""
    pm, pl, chains = _three_chains()
    arrivals, l_out = [0, 1, 2, 3, 4, 5], [5, 1, 5, 5, 5, 1]
    res = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("per_token", 1e9, 2)))
    assert [c[0] for c in res.chains] == [2, 0, 2, 2, 2, 0]
    assert res.start_ms[4] == pytest.approx(15000.0) and res.start_ms[5] == pytest.approx(5.0)
    plain = simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("per_token", 1e9)))
    assert plain.chains[0][0] == 0 and plain.wait_ms.max() == 0.0
    with pytest.raises(ValueError, match="resolve"):
        simulate_central(pm, pl, _lengths(arrivals, l_out), JffcDispatcher(chains, DispatchRule("per_token", 1e9, "auto")))


def test_tuned_long_output_limit_is_the_best_candidate_and_helps_on_an_independent_stream():
    """A mix of 19 one-token requests to one of 40 tokens at 0.35 req/s: long outputs hold the three fast
    places 40 s each. The tuned limit is the argmin of its trials (ties to the larger), keeps the 40-token
    requests off the fast chains, and on an independent 20,000-request stream lowers the mean per-token time
    against no limit (measured ~5 % over four seeds); no long output ever starts on a reserved chain."""
    pm, pl, chains = _three_chains()
    samples = tuple([(1, 1)] * 19 + [(1, 40)])
    rule = DispatchRule("per_token", 1e9, "auto", 0.35, samples)
    trials = limit_trials(pm, pl, chains, rule)
    assert set(trials) == {1.0, math.inf}  # the distinct output quantiles, then no limit
    tuned = resolve_rule(pm, pl, chains, rule)
    assert tuned.long_output_limit == 1.0 and trials[1.0] < trials[math.inf]
    stream = tuning_workload(pm, samples, 0.35, 20_000, np.random.default_rng(1))
    res = simulate_central(pm, pl, stream, JffcDispatcher(chains, tuned))
    plain = simulate_central(pm, pl, stream, JffcDispatcher(chains, DispatchRule("per_token", 1e9, None, 0.35, samples)))
    assert res.per_token_ms.mean() < 0.98 * plain.per_token_ms.mean()
    on = np.array([c[0] for c in res.chains])
    assert not np.any((stream.output_tokens > 1) & (on < 2))
    assert (running_slots_peak(res) <= np.array([2, 1, 3])).all() and np.isfinite(res.response_ms).all()
    # nothing to tune without a rate or a length spread: no limit
    assert resolve_rule(pm, pl, chains, DispatchRule("per_token", 1e9, "auto", None, samples)).long_output_limit is None
    assert resolve_rule(pm, pl, chains, DispatchRule("per_token", 1e9, "auto", 0.35, ((1, 1),))).long_output_limit is None
