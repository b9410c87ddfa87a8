"""Fidelity knobs of docs/model.md §17 (netem links, activation transfer, PETALS' max-length reservation)
and the built-in testbed scenario; every built-in scenario's results are unchanged with the knobs off."""

from __future__ import annotations

import numpy as np
import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.compare import run_once
from swarmplan.methods.registry import METHODS, MethodContext
from swarmplan.perf import memory, timing
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import builtin_names, load_scenario
from swarmplan.scenario.network import (
    netem_client_rtt_ms,
    netem_link_ms,
    netem_server_rtt_ms,
)
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import Workload
from swarmplan.sim.run import run_policy

TESTBED = "testbed-petals-mig9"

# Regression values, not expectations derived here: (service, wait, mean response, p95 response) in s of
# run 0, seed 0, profile 'fair', every default method, captured with swarmplan at commit b4fe95d (main before
# the fidelity knobs existed) by run_once. The knobs at their defaults must reproduce them exactly.
BEFORE = {
    "paper-abvt": {
        "petals": (146.384421, 160.59, 307.044421, 495.823212),
        "petals-retry": (132.753212, 109.14, 241.963212, 438.823212),
        "opt-order": (64.656505, 24.25, 88.976505, 127.726505),
        "opt-num": (141.63756, 0.0, 141.70756, 158.207065),
        "opt-rr": (132.753212, 156.99, 289.813212, 495.823212),
        "cg-bprr": (64.656505, 0.51, 65.236505, 67.726505),
        "gbp-cr": (64.656505, 0.0, 64.726505, 64.726505),
        "cgbp-jffc": (64.656505, 0.257778, 64.984283, 67.024553),
    },
    "paper-bellcanada": {
        "petals": (64.435417, 0.0, 64.505417, 99.7296),
        "petals-retry": (64.435417, 0.0, 64.505417, 99.7296),
        "opt-order": (58.261971, 0.0, 58.331971, 58.573289),
        "opt-num": (59.876994, 0.0, 59.946994, 58.289385),
        "opt-rr": (58.219385, 13.09, 71.379385, 90.889385),
        "cg-bprr": (58.230741, 0.0, 58.300741, 58.289385),
        "gbp-cr": (58.219385, 0.0, 58.289385, 58.289385),
        "cgbp-jffc": (58.230741, 0.0, 58.300741, 58.289385),
    },
    "paper-gtsce": {
        "petals": (56.792042, 0.0, 56.862042, 57.004265),
        "petals-retry": (56.792042, 0.0, 56.862042, 57.004265),
        "opt-order": (56.78982, 0.0, 56.85982, 56.988393),
        "opt-num": (56.77385, 0.0, 56.84385, 56.838889),
        "opt-rr": (56.790388, 0.03, 56.890388, 57.004265),
        "cg-bprr": (56.773374, 0.01, 56.853374, 56.838889),
        "gbp-cr": (56.768889, 0.0, 56.838889, 56.838889),
        "cgbp-jffc": (56.773374, 0.0, 56.843374, 56.838889),
    },
    "trace-azure-code": {
        "petals": (1.691334, 7831.682, 7833.443334, 26886.986904),
        "petals-retry": (1.839086, 37.573, 39.482086, 184.986348),
        "opt-order": (1.691334, 7831.682, 7833.443334, 26886.986904),
        "opt-num": (1.546635, 0.0, 1.616635, 4.057333),
        "opt-rr": (1.833406, 1895.201, 1897.104406, 3663.976678),
        "cg-bprr": (1.503908, 0.088, 1.661908, 4.368287),
        "gbp-cr": (1.511955, 0.000201, 1.582155, 4.038721),
        "cgbp-jffc": (1.545519, 0.0, 1.615519, 4.057333),
    },
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_builtin_results_unchanged_with_knobs_off(name):
    sc, base = load_scenario(name)
    assert sc.network.netem is None and sc.network.bandwidth_mbps is None and not sc.network.link_bandwidth_mbps
    assert sc.workload.petals_reserve == "cache_tokens" and sc.model.activation_bytes_per_token is None
    assert sc.timing.petals_view_period_ms is None and sc.timing.petals_refresh_ms is None and sc.timing.petals_ban_ms is None
    got, _ = run_once(sc, [], 0, sc.workload.n_requests, 0, "fair", "petals", base, False)
    # Methods added to the default set later (slo-pack) may appear; the pinned ones must be unchanged.
    assert set(BEFORE[name]) <= set(got)
    for method, (service, wait, resp, p95) in BEFORE[name].items():
        s = got[method]
        assert (s["service_s"], s["wait_s"], s["response_mean_s"], s["response_p95_s"]) == pytest.approx(
            (service, wait, resp, p95), abs=1e-6
        ), method


def test_only_the_testbed_scenario_turns_knobs_on():
    for name in builtin_names():
        sc, _ = load_scenario(name)
        on = sc.network.netem is not None or sc.network.bandwidth_mbps is not None or sc.workload.petals_reserve != "cache_tokens"
        assert on == (name == TESTBED), name


def test_netem_delays_by_hand():
    # One-way delay RTT/2 + 18 ms (infra/network_emulator.py): RTT 20 → 28 ms, 120 → 78 ms.
    assert netem_link_ms([20.0, 120.0], 18.0).tolist() == [28.0, 78.0]
    assert netem_client_rtt_ms([[20.0, 120.0]], 18.0, 1).tolist() == [[28.0, 78.0]]
    assert netem_client_rtt_ms([[20.0, 120.0]], 18.0, 2).tolist() == [[56.0, 156.0]]
    # Server ↔ server through the client host: d_i + d_j per delayed direction.
    assert netem_server_rtt_ms([28.0, 78.0], 1).tolist() == [[0.0, 106.0], [106.0, 0.0]]
    assert netem_server_rtt_ms([28.0, 78.0], 2).tolist() == [[0.0, 212.0], [212.0, 0.0]]


def _testbed_pm(*sets):
    sc, base = load_scenario(TESTBED, list(sets))
    return sc, PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))


def test_testbed_scenario_numbers():
    _, pm = _testbed_pm()
    sw = pm.swarm
    assert sw.server_names == ("3g_0", "3g_1", "3g_2", "2g_0", "2g_1", "2g_2", "2g_3", "2g_4", "2g_5")
    # Nine RTTs of infra/ripe_atlas_rtts.py through netem with one delayed direction: RTT/2 + 18.
    assert sw.rtt_raw_client_ms[0].tolist() == [28.0, 35.5, 40.5, 45.5, 53.0, 58.0, 63.0, 68.0, 78.0]
    assert sw.rtt_raw_server_ms[0, 1] == 28.0 + 35.5
    assert pm.block_gb == 0.21 and pm.kv_gb == pytest.approx(0.065, abs=1e-12)  # tests/conftest.py fixtures
    assert sw.memory_gb.tolist() == [40.0] * 3 + [20.0] * 6
    assert pm.L == 32 and (sw.input_tokens, sw.output_tokens) == (2048, 28)  # the code trace's means (planning)
    # Decode step per hop = netem round trip + one token's activations both ways, nothing else.
    tr = 2 * 8192 * 8 / 650.8e3
    assert np.allclose(pm.rtt_ms[0], sw.rtt_raw_client_ms[0] + tr)
    assert pm.rtt_in_for(2048)[0, 0] == pytest.approx(28.0 + 2048 * tr)


def test_transfer_time_by_hand():
    # LLaMA-2-7B fp16 hidden state 4096 × 2 bytes, client relay (two transfers per hop), 650.8 Mbit/s.
    assert timing.transfer_ms_per_token(8192, 650.8) == pytest.approx(2 * 65536 / 650_800)
    assert timing.transfer_ms_per_token(8192, np.inf) == 0.0
    _, pm = _testbed_pm()
    assert memory.activation_bytes_per_token(pm.swarm.model) == 8192
    assert 2048 * pm.transfer_ms_per_token[0, 0] == pytest.approx(412.47, abs=0.01)


def test_per_link_bandwidth_overrides_the_default():
    _, pm = _testbed_pm("network.link_bandwidth_mbps={2g_5: 100}")
    assert pm.transfer_ms_per_token[0, 8] == pytest.approx(2 * 8192 * 8 / 1e5)
    assert pm.transfer_ms_per_token[0, 0] == pytest.approx(2 * 8192 * 8 / 650.8e3)
    _, pm = _testbed_pm("network.bandwidth_mbps=null", "network.link_bandwidth_mbps={3g_0: 1000}")
    assert pm.transfer_ms_per_token[0, 0] == pytest.approx(0.131072) and pm.transfer_ms_per_token[0, 1] == 0.0
    with pytest.raises(SwarmplanError, match="link_bandwidth_mbps"):
        _testbed_pm("network.link_bandwidth_mbps={nosuch: 10}")


def test_netem_needs_one_client():
    sc, base = load_scenario("paper-abvt", ["network.netem={overhead_ms: 18}", "clients.count=2"])
    with pytest.raises(SwarmplanError, match="netem"):
        realize(sc, np.random.default_rng(0), base)


def _one_server(reserve: str):
    """The testbed's first server alone: PETALS places all 32 blocks, pool 8192 token·blocks per block."""
    sets = ["servers=[{name: a, gpu: mig-3g, rtt_ms: {client: 20}}]", f"workload.petals_reserve={reserve}"]
    return _testbed_pm(*sets)


@pytest.mark.parametrize("reserve, admitted", [("max_length", 4), ("cache_tokens", 2)])
def test_petals_admits_sessions_by_declared_length(reserve, admitted):
    # Four simultaneous 2000 + 10-token sessions: by max length 4 × 2010 = 8040 ≤ 8192 tokens fit at once;
    # sized for cache_tokens = 4096 each only ⌊8192 / 4096⌋ = 2 do, the others retry later.
    _, pm = _one_server(reserve)
    wl = Workload(np.zeros(4), np.full(4, 2000), np.full(4, 10), np.zeros(4, dtype=np.int64))
    ctx = MethodContext(pm, np.random.default_rng(0), 1.0, None, "petals")
    placement, policy = METHODS["petals-retry"].build(ctx)
    assert placement.n_blocks.tolist() == [32]
    expected_slots = 32 * 8192 if reserve == "max_length" else 64
    assert placement.cache_slots.tolist() == [expected_slots]
    res = run_policy(pm, placement, wl, policy, 0.0, "petals-retry")
    assert int((res.wait_ms == 0).sum()) == admitted
    if admitted < 4:  # the rest start after the first sessions complete
        assert res.wait_ms.max() >= (res.prefill_ms + res.decode_ms)[0]


def test_a_session_larger_than_the_pool_is_an_error():
    _, pm = _one_server("max_length")
    wl = Workload(np.zeros(1), np.full(1, 8190), np.full(1, 10), np.zeros(1, dtype=np.int64))
    ctx = MethodContext(pm, np.random.default_rng(0), 1.0, None, "petals")
    placement, policy = METHODS["petals"].build(ctx)
    with pytest.raises(SwarmplanError, match="attn_cache_tokens"):
        run_policy(pm, placement, wl, policy, 0.0, "petals")


def test_transfer_reaches_every_engine_consistently():
    # A request's service in the simulator equals the perf model's chain time (t_1 + (l_out − 1) t_tok).
    _, pm = _one_server("max_length")
    wl = Workload(np.zeros(1), np.full(1, 2048), np.full(1, 28), np.zeros(1, dtype=np.int64))
    ctx = MethodContext(pm, np.random.default_rng(0), 0.1, None, "petals")
    for name in ("petals-retry", "gbp-cr", "cg-bprr"):
        placement, policy = METHODS[name].build(ctx)
        res = run_policy(pm, placement, wl, policy, 0.0, name)
        chain, blocks = res.chains[0], res.processed[0]
        hand = sum(
            pm.rtt_in_for(2048)[0, j] + pm.tau_in_for(2048)[j] * k + 27 * (pm.rtt_ms[0, j] + pm.tau_ms[j] * k)
            for j, k in zip(chain, blocks)
        )
        assert res.prefill_ms[0] + res.decode_ms[0] == pytest.approx(hand), name
        # The transfer is in it: 2048 tokens both ways on every hop plus 27 decode tokens.
        assert hand - sum(
            pm.swarm.rtt_raw_client_ms[0, j] * 28 + pm.tau_in_for(2048)[j] * k + 27 * pm.tau_ms[j] * k
            for j, k in zip(chain, blocks)
        ) == pytest.approx(len(chain) * (2048 + 27) * 2 * 65536 / 650_800)


def test_testbed_prediction_keeps_the_published_order():
    # Not a calibrated value: the invariant the testbed shows (PETALS' real client is the slowest of the three).
    sc, base = load_scenario(TESTBED)
    got, _ = run_once(sc, ["petals-retry", "cg-bprr", "gbp-cr"], 0, 300, 0, "fair", "petals", base, False)
    assert got["petals-retry"]["response_mean_s"] > got["cg-bprr"]["response_mean_s"]
    assert got["petals-retry"]["wait_s"] > got["gbp-cr"]["wait_s"]


@pytest.mark.parametrize("period", [None, 120_000.0])
def test_petals_stale_view_herds_on_the_fastest_server(period):
    # Six simultaneous 2000 + 10-token sessions on the testbed; 3g_0 (the nearest) holds 4 of them. With the
    # live state the last two go to 3g_1 at once; with the free cache as announced at t = 0 the client keeps
    # choosing 3g_0 (it looks free), fails, backs off and gets in only when 3g_0's first sessions end.
    sets = [] if period is None else [f"timing.petals_view_period_ms={period}"]
    _, pm = _testbed_pm(*sets)
    wl = Workload(np.zeros(6), np.full(6, 2000), np.full(6, 10), np.zeros(6, dtype=np.int64))
    ctx = MethodContext(pm, np.random.default_rng(0), 1.0, None, "petals")
    placement, policy = METHODS["petals-retry"].build(ctx)
    res = run_policy(pm, placement, wl, policy, 0.0, "petals-retry")
    names = [pm.swarm.server_names[c[0]] for c in res.chains]
    if period is None:
        assert res.wait_ms.tolist() == [0.0] * 6 and names == ["3g_0"] * 4 + ["3g_1"] * 2
    else:
        assert names == ["3g_0"] * 6 and (res.wait_ms[4:] >= (res.prefill_ms + res.decode_ms)[0]).all()


def test_petals_bans_apply_from_the_next_refresh_and_clear_on_success():
    from swarmplan.routing.slots import SlotBook

    _, pm = _testbed_pm("timing.petals_view_period_ms=120000", "timing.petals_refresh_ms=60000", "timing.petals_ban_ms=15000")
    ctx = MethodContext(pm, np.random.default_rng(0), 1.0, None, "petals")
    placement, client = METHODS["petals-retry"].build(ctx)
    router = client.router
    book = SlotBook(placement.cache_slots)

    def first(now):
        return pm.swarm.server_names[router.route(book, now, 0, 100, 10).servers[0]]

    assert first(0.0) == "3g_0"
    for _ in range(3):  # third consecutive failure: banned 15 s · 2² = 60 s, until 60,100 ms
        router.attempt_result(100.0, [0], 0)
    assert first(200.0) == "3g_0"  # the ban counts only from the client's next refresh (at 60 s)
    assert first(60_050.0) == "3g_1"  # refreshed while banned: 3g_0 is out of the view
    router.attempt_result(60_060.0, [0], None)  # a success clears the ban record …
    assert first(90_000.0) == "3g_1"  # … but the view changes only at the next refresh
    assert first(120_000.0) == "3g_0"
