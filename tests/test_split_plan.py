"""Split planning on scenarios: invariants of the three methods, the simulation, bad input (docs/split.md)."""

import dataclasses
import json

import numpy as np
import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.split.model import build_split_model
from swarmplan.split.plan import draw_requests, plan_window
from swarmplan.split.simulate import simulate_split


def _edge(overrides=(), n=120, seed=0):
    sc, base = load_scenario("split-edge", list(overrides))
    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(seed), base))
    sm = build_split_model(sc, pm)
    req = draw_requests(sc, sm, np.random.default_rng(seed + 1), n)
    return sc, sm, req


@pytest.fixture(scope="module")
def edge_plan():
    _sc, sm, req = _edge()
    return sm, req, plan_window(sm, req)


def test_dp_beats_greedy_and_all_on_server(edge_plan):
    _sm, req, plan = edge_plan
    dp, gr, aos = (plan.results[m] for m in ("split-dp", "greedy", "all-on-server"))
    assert dp.served == gr.served == aos.served == req.n
    assert dp.server_work_ms.sum() <= gr.server_work_ms.sum() + 1e-6
    assert dp.throughput_at_sla_per_s >= gr.throughput_at_sla_per_s * (1 - 1e-12)  # compute-bound here
    assert dp.bounds_per_s[0] <= dp.bounds_per_s[1]
    assert plan.dp.server_work_fraction < 1.0 and aos.server_work_fraction == pytest.approx(1.0)
    assert all(c.prefix == 0 and c.suffix == 0 for c in aos.choices)


def test_every_device_keeps_its_budget(edge_plan):
    sm, req, plan = edge_plan
    for method in ("split-dp", "greedy"):
        used: dict = {}
        for r, c in enumerate(plan.results[method].choices):
            key = (int(req.device_class[r]), int(req.device_instance[r]))
            used[key] = used.get(key, 0.0) + c.client_work_ms
        for (d, _), ms in used.items():
            assert ms <= sm.devices[d].budget_fraction * req.window_ms + 1e-6


def test_dp_never_violates_an_sla_in_simulation():
    for seed, sets in ((0, ()), (3, ("workload.rate_per_s=6",)), (5, ("split.devices.1.count=1",))):
        _sc, sm, req = _edge(sets, n=150, seed=seed)
        plan = plan_window(sm, req)
        sim = simulate_split(sm, req, plan.dp.choices, "split-dp")
        assert sim.within_sla.all(), seed
        assert sim.server_work_ms.sum() == pytest.approx(plan.dp.server_work_ms.sum())


def test_all_on_server_is_the_k0_case():
    """With no device able to hold a block, the DP's plan is exactly all-on-server."""
    _sc, sm, req = _edge(n=80)
    none = dataclasses.replace(sm, devices=tuple(dataclasses.replace(d, max_blocks=0) for d in sm.devices))
    plan = plan_window(none, req)
    dp, aos = plan.results["split-dp"], plan.results["all-on-server"]
    assert [(c.prefix, c.suffix) for c in dp.choices] == [(0, 0)] * req.n
    np.testing.assert_allclose(dp.server_work_ms, aos.server_work_ms)
    assert dp.throughput_at_sla_per_s == pytest.approx(aos.throughput_at_sla_per_s)


def test_kv_contention_makes_requests_wait():
    """A server with room for few caches: bookings queue (docs/model.md §9.3) and the simulation says so."""
    _sc, sm, req = _edge(
        ("gpus.small.preset=a100-80gb", "gpus.small.memory_gb=14", "servers.0.gpu=small", "workload.rate_per_s=20"), n=150
    )
    plan = plan_window(sm, req)
    sim = simulate_split(sm, req, plan.results["all-on-server"].choices, "all-on-server")
    assert np.nanmax(sim.wait_ms) > 0 and not sim.within_sla.all()


def test_sla_no_split_can_meet_names_type_and_gap():
    with pytest.raises(SwarmplanError) as err:
        _sc, sm, req = _edge(("split.request_types.2.sla_response_s=1",), n=60)
        plan_window(sm, req)
    text = str(err.value)
    assert "'code'" in text and "over the bound of 1 s" in text


def test_device_that_cannot_hold_a_block():
    with pytest.raises(SwarmplanError, match="less than one block"):
        _edge(("split.devices.2.memory_gb=0.3",))


@pytest.mark.parametrize("value", ["0", "-5"])
def test_bandwidth_must_be_positive(value):
    with pytest.raises(SwarmplanError, match="bandwidth"):
        _edge((f"split.devices.0.uplink_mbit_per_s={value}",))


def test_shares_must_sum_to_one():
    with pytest.raises(SwarmplanError, match="sum to 1"):
        load_scenario("split-edge", ["split.devices.0.share=0.9"])


def test_existing_scenarios_have_no_split():
    for name in ("paper-abvt", "trace-azure-code"):
        sc, _ = load_scenario(name)
        assert sc.split is None
        with pytest.raises(SwarmplanError, match="no split"):
            build_split_model(sc, None)


def test_cli_json_and_bad_input(run_cli):
    code, out, _ = run_cli("split", "split-edge", "--json", "--requests", "60")
    assert code == 0
    doc = json.loads(out)
    assert {"server_work_fraction", "throughput_gain_over_greedy", "types"} <= set(doc)
    assert 0 < doc["server_work_fraction"] < 1 and doc["throughput_gain_over_greedy"] >= 0
    assert {t["type"] for t in doc["types"]} == {"chat", "summarise", "code"}
    code, out, err = run_cli("split", "split-edge", "--set", "split.devices.0.downlink_mbit_per_s=0")
    assert code == 2 and out == "" and "bandwidth" in err and "Traceback" not in err
    code, _, err = run_cli("split", "paper-abvt")
    assert code == 2 and "no split" in err
