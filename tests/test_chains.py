"""GBP-CR, GCA, JFFC and the Theorem-4 bounds (Sun, He, Hou 2026)."""

import itertools
import math

import numpy as np
import pytest
from conftest import perf_of

from swarmplan.errors import SwarmplanError
from swarmplan.perf.queueing import jffc_response_bounds_ms
from swarmplan.placement.gbpcr import gbp_cr, whole_request_times
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain, gca
from swarmplan.scenario.workload import Workload, poisson_arrivals_ms
from swarmplan.sim.central import JffcDispatcher, simulate_central
from swarmplan.sim.engine import running_slots_peak

EPS = 1e-3


def chain_scenario(memory, rtt, base, n_blocks, rate_per_s=1.0, output_tokens=1):
    """l_in = 1 and l_out = 1 with no input overhead, so τ^c_j = RTT_j and τ^p_j = the prefill base."""
    return {
        "model": {"n_blocks": n_blocks, "block_gb": 1.0, "kv_bytes_per_token_per_block": 0.1e9 / (1 + output_tokens)},
        "gpus": {
            f"g{i}": {
                "memory_gb": m,
                "decode_ms_per_block": 1e-9,
                "prefill_ms_per_block": b,
                "prefill_ms_per_token_per_block": 0.0,
            }
            for i, (m, b) in enumerate(zip(memory, base))
        },
        "servers": [{"name": f"j{i + 1}", "gpu": f"g{i}", "rtt_ms": {"o": r}} for i, r in enumerate(rtt)],
        "clients": [{"name": "o"}],
        "timing": {"input_overhead_per_token_ms": 0, "input_overhead_base_ms": 0, "overhead_ms": 0, "initial_delay_ms": 0},
        "workload": {"input_tokens": 1, "output_tokens": output_tokens, "rate_per_s": rate_per_s},
    }


def worked_example():
    # J = 5, L = 3, s_m = 1, s_c = 0.1, M = 3 for j2 else 2, τ^c = 2 for j2 else 1, τ^p_{j_l} = l·ε, c = 1.
    return perf_of(chain_scenario([2, 3, 2, 2, 2], [1, 2, 1, 1, 1], [EPS * l for l in range(1, 6)], 3, rate_per_s=350))


def test_worked_example_gbp_cr():
    pm = worked_example()
    pl = gbp_cr(pm, 1, rate_per_s=350)  # λ/(ρ̄c) = 0.5 jobs/ms: needs both chains
    assert pl.n_blocks.tolist() == [1, 2, 1, 1, 1]
    assert pl.start.tolist() == [1, 2, 1, 2, 3]
    assert pl.info["chains_formed"] == [(0, 1), (2, 3, 4)]
    assert pl.info["rate_of_chains_per_s"] == pytest.approx(1000 * (1 / (3 + 5 * EPS) + 1 / (3 + 12 * EPS)))
    assert pl.cache_slots.tolist() == [10] * 5


def test_worked_example_gca_chains_and_capacities():
    pm = worked_example()
    pl = gbp_cr(pm, 1, rate_per_s=350)
    tau_c, tau_p = whole_request_times(pm)
    chains = gca(pl, 3, tau_c, tau_p)
    assert [(ch.servers, ch.capacity) for ch in chains] == [((0, 1), 5), ((0, 3, 4), 5), ((2, 3, 4), 5)]
    assert [ch.service_ms for ch in chains] == pytest.approx([3 + 5 * EPS, 3 + 10 * EPS, 3 + 12 * EPS])
    nu = sum(ch.capacity * ch.rate_per_ms for ch in chains)
    assert nu == pytest.approx(5 / (3 + 5 * EPS) + 5 / (3 + 10 * EPS) + 5 / (3 + 12 * EPS))


def _min_chains_brute_force(t, m, L, need):
    """Fewest disjoint server groups, each holding ≥ L blocks, with Σ 1/T_k ≥ need (T_k = Σ t_j)."""
    usable = [j for j in range(len(t)) if m[j] > 0]
    size = math.ceil(L / m[usable[0]])
    for K in range(1, len(usable) // size + 1):
        best = 0.0
        for groups in _disjoint_groups(usable, size, K):
            best = max(best, sum(1.0 / sum(t[j] for j in g) for g in groups))
        if best >= need - 1e-12:
            return K
    return None


def _disjoint_groups(items, size, K):
    if K == 0:
        yield []
        return
    first, rest = items[0], items[1:]
    for g in itertools.combinations(rest, size - 1):  # groups containing the first item
        remaining = [x for x in rest if x not in g]
        for tail in _disjoint_groups(remaining, size, K - 1):
            yield [(first, *g), *tail]
    if len(rest) >= size * K:  # or the first item unused
        yield from _disjoint_groups(rest, size, K)


@pytest.mark.parametrize("seed", range(20))
def test_gbp_cr_is_optimal_for_its_problem_with_equal_memory(seed):
    """Theorem 2: with equal memory GBP-CR forms the fewest chains that reach the rate target."""
    rng = np.random.default_rng(seed)
    while True:  # draw until every block fits with cache for c jobs
        J, L, c = int(rng.integers(3, 8)), int(rng.integers(2, 7)), int(rng.integers(1, 3))
        memory = float(rng.uniform(1.2, 4.0))
        try:
            pm = perf_of(chain_scenario([memory] * J, rng.uniform(1, 50, J).tolist(), rng.uniform(0.1, 20, J).tolist(), L))
            gbp_cr(pm, c, 1.0)
            break
        except SwarmplanError:
            continue
    tau_c, tau_p = whole_request_times(pm)
    m = np.minimum(np.floor(pm.memory_gb / (1.0 + pm.kv_gb * c) + 1e-9), L).astype(int)
    t = tau_c + tau_p * m
    # A rate target between the best 1 and about 3 chains makes K interesting.
    need = float(rng.uniform(0.1, 2.0)) / (min(t) * math.ceil(L / m[0]))
    pl = gbp_cr(pm, c, rate_per_s=need * 1000 * 0.7 * c)
    expected = _min_chains_brute_force(t, m, L, need)
    reached = pl.info["rate_of_chains_per_s"] >= pl.info["target_rate_per_s"] - 1e-9
    assert (pl.info["K"] if reached else None) == expected


# --- Theorem 4 ---------------------------------------------------------------------------------------


def test_theorem4_single_chain_is_mm1():
    lo, hi = jffc_response_bounds_ms([100.0], [1], 0.006)  # μ = 0.01/ms, λ = 0.006/ms
    assert lo == pytest.approx(1 / (0.01 - 0.006)) and hi == pytest.approx(lo)


def test_theorem4_identical_chains_is_erlang_c():
    mu, c, lam = 0.01, 4, 0.03
    a = lam / mu
    rho = a / c
    p0 = 1 / (sum(a**k / math.factorial(k) for k in range(c)) + a**c / (math.factorial(c) * (1 - rho)))
    erlang_c = a**c / (math.factorial(c) * (1 - rho)) * p0
    expected = erlang_c / (c * mu - lam) + 1 / mu
    lo, hi = jffc_response_bounds_ms([100.0, 100.0], [3, 1], lam)
    assert lo == pytest.approx(expected) and hi == pytest.approx(expected)


def test_theorem4_unstable_load_is_an_error():
    with pytest.raises(SwarmplanError, match="rate"):
        jffc_response_bounds_ms([100.0], [2], 0.05)


def _three_chains():
    # L = 1, three servers each holding the whole model; service = RTT (1000, 1500, 3000 ms).
    pm = perf_of(chain_scenario([30.0, 30.0, 30.0], [1000.0, 1500.0, 3000.0], [0.0, 0.0, 0.0], 1))
    pl = Placement("hand", np.ones(3, dtype=np.int64), np.ones(3, dtype=np.int64), np.array([2, 1, 3]), "proposed")
    chains = [Chain((0,), (1,), 1000.0, 2), Chain((1,), (1,), 1500.0, 1), Chain((2,), (1,), 3000.0, 3)]
    return pm, pl, chains


def _workload(arrivals, service_factor=None):
    n = len(arrivals)
    return Workload(
        np.asarray(arrivals, dtype=float),
        np.ones(n, dtype=np.int64),
        np.ones(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        service_factor,
    )


def test_simulated_jffc_lies_between_the_theorem4_bounds():
    """Poisson arrivals and exponential service: the simulated mean response time must fall within the
    bounds; tolerance 3 % for Monte Carlo error (200,000 requests, batch-means std error ≈ 0.5 %)."""
    pm, pl, chains = _three_chains()
    lam = 0.0025  # per ms; ν = 2/1000 + 1/1500 + 3/3000 = 0.00367, load 0.68
    lo, hi = jffc_response_bounds_ms([c.service_ms for c in chains], [c.capacity for c in chains], lam)
    assert hi > lo * 1.05, "the bounds are apart enough for the check to mean something"
    wl = _workload(
        poisson_arrivals_ms(lam * 1000, 200_000, np.random.default_rng(1)), np.random.default_rng(2).exponential(1.0, 200_000)
    )
    res = simulate_central(pm, pl, wl, JffcDispatcher(chains))
    mean = res.response_ms[1000:].mean()
    assert lo * 0.97 <= mean <= hi * 1.03


def test_jffc_fastest_free_chain_fcfs_and_capacity():
    pm, pl, chains = _three_chains()
    arrivals = [0, 1, 2, 3, 4, 5, 6, 7, 8, 1200, 1300]
    res = simulate_central(pm, pl, _workload(arrivals), JffcDispatcher(chains))
    # Fastest free chain first: two on chain 1 (1000 ms), one on chain 2 (1500 ms), three on chain 3.
    assert [c[0] for c in res.chains[:6]] == [0, 0, 1, 2, 2, 2]
    # Requests 6–8 queue; chain 1 frees at 1000 and 1001 ms, chain 2 at 1502, in FCFS order.
    assert res.wait_ms[6:9].tolist() == [1000 - 6, 1001 - 7, 1502 - 8]
    assert [c[0] for c in res.chains[6:9]] == [0, 0, 1]
    starts = res.start_ms
    waited = np.flatnonzero(res.wait_ms > 0)
    assert (np.diff(starts[waited]) >= 0).all(), "the queue is first come, first served"
    assert (running_slots_peak(res) <= np.array([2, 1, 3])).all(), "never more jobs on a chain than its capacity"


def test_exponential_service_option_reaches_every_engine():
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.workload import draw_workload

    sc, base = load_scenario("paper-abvt", ["workload.service=exponential"])
    wl = draw_workload(sc.workload, 1, np.random.default_rng(0), 4000, base)
    assert wl.factors.mean() == pytest.approx(1.0, abs=0.05) and wl.factors.std() == pytest.approx(1.0, abs=0.06)
    from swarmplan.experiments.compare import compare
    from swarmplan.methods.registry import get_methods

    res = compare(sc, get_methods(["cg-bprr", "petals-retry", "gbp-cr"]), 1, 200, 0, "fair", base_dir=base)
    for name, runs in res.per_run.items():
        assert runs[0]["response_p99_s"] > 2 * runs[0]["response_p50_s"], name  # exponential tails


def test_gbp_cr_method_runs_in_compare_and_respects_memory():
    from swarmplan.experiments.compare import compare
    from swarmplan.methods.registry import get_methods
    from swarmplan.scenario.loader import load_scenario

    sc, base = load_scenario("paper-abvt", ["workload.rate_per_s=1.0"])
    res = compare(sc, get_methods(["petals", "gbp-cr", "cgbp-jffc"]), 2, 80, 0, "fair", base_dir=base)
    for name in ("gbp-cr", "cgbp-jffc"):
        assert all(r["requests"] == 80 for r in res.per_run[name])
    assert res.per_run["gbp-cr"][0]["c"] >= 1
