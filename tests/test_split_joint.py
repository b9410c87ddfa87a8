"""Joint split + swarm placement (docs/split.md §9) on split-swarm."""

import numpy as np
import pytest

from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.split.joint import pair_times, plan_joint, swarm_for_blocks
from swarmplan.split.model import build_split_model, server_decode_batches
from swarmplan.split.run import simulate_swarm_option, streams


def _joint(sets=()):
    sc, base = load_scenario("split-swarm", list(sets))
    pm = PerfModel.from_swarm(realize(sc, streams(0)[0], base))  # the swarm `swarmplan split` draws
    sm = build_split_model(sc, pm)
    batch = server_decode_batches(sc, pm)
    return sc, pm, sm, batch, plan_joint(pm, sm.types, sm.devices, batch)


@pytest.fixture(scope="module")
def joint():
    return _joint()


def test_sweep_covers_every_k_the_devices_allow(joint):
    _sc, pm, sm, _batch, jp = joint
    assert jp.k_max == min(d.max_blocks for d in sm.devices) == 5  # the laptops hold 5 BLOOM blocks
    assert [o.k for o in jp.options] == list(range(jp.k_max + 1))
    for o in jp.options:
        for ch in o.chain_list:  # every chain processes exactly the swarm's blocks k+1..L
            assert sum(ch.blocks) == pm.L - o.k
        assert o.capacity_at_sla_per_s <= o.capacity_per_s + 1e-12
    assert jp.best.capacity_at_sla_per_s >= max(jp.greedy.capacity_at_sla_per_s, jp.all_on_swarm.capacity_at_sla_per_s)
    assert jp.all_on_swarm.k == 0


def test_offloading_first_blocks_raises_capacity_here(joint):
    """The MIG slices are memory-bound: fewer blocks leave room for a larger cache reservation c."""
    _sc, _pm, _sm, _batch, jp = joint
    assert jp.best.k > 0 and jp.best.c > jp.all_on_swarm.c
    assert jp.best.capacity_at_sla_per_s > jp.all_on_swarm.capacity_at_sla_per_s
    assert jp.server_work_fraction < 1


def test_a_tight_sla_keeps_every_block_on_the_swarm():
    """Each client block adds its time to every step; with a chat SLA just above the k = 0 response, no k > 0 fits."""
    _sc, _pm, _sm, _batch, jp = _joint(("split.request_types.0.sla_response_s=65",))
    assert jp.best.k == 0 and jp.greedy.k == 0
    assert all(o.capacity_at_sla_per_s == 0 for o in jp.options[1:])


def test_pair_times_add_the_client_blocks(joint):
    _sc, pm, sm, _batch, jp = joint
    o = jp.best
    ch = o.chain_list[0]
    t, d = sm.types[0], sm.devices[1]
    with_k = pair_times(swarm_for_blocks(pm, o.k), ch, t, d, o.k)
    without = pair_times(swarm_for_blocks(pm, o.k), ch, t, d, 0)
    assert with_k.ttft_ms - without.ttft_ms == pytest.approx(o.k * d.prefill_ms(t.input_tokens))
    assert with_k.token_ms - without.token_ms == pytest.approx(o.k * d.decode_ms)


def test_swarm_simulation_meets_the_sla_at_the_planned_rate(joint):
    sc, pm, sm, batch, jp = joint
    res = simulate_swarm_option(sc, pm, sm, jp.best, np.random.default_rng(1), batch, 80, "joint")
    assert res["within_sla"] == res["requests"] == 80
    assert res["client_work_per_request_ms"] > 0


def test_swarm_sessions_include_the_client_time(joint):
    """On the fastest chain, a request that does not wait takes chain service + its client's k blocks + d_init."""
    from swarmplan.perf.timing import request_service_ms
    from swarmplan.scenario.workload import draw_workload
    from swarmplan.split.joint import chain_times_ms
    from swarmplan.split.run import swarm_result_with_clients, typed_workload

    sc, pm, sm, _, jp = joint
    opt = jp.best
    rng = np.random.default_rng(3)
    wl, mix = typed_workload(sm, draw_workload(sc.workload, pm.swarm.n_clients, rng, 40), rng)
    res, client = swarm_result_with_clients(pm, sm, opt, wl, mix, "joint")
    sub = swarm_for_blocks(pm, opt.k)
    fastest = min((ch for ch, ok in zip(opt.chain_list, opt.usable) if ok), key=lambda ch: ch.service_ms)
    checked = 0
    for r in range(wl.n):
        if res.chains[r] == fastest.servers and res.wait_ms[r] == 0:
            t = sm.types[int(mix.type_index[r])]
            chain = request_service_ms(*chain_times_ms(sub, fastest, t), t.output_tokens)
            assert res.response_ms[r] == pytest.approx(chain + client[r] + pm.swarm.timing.initial_delay_ms)
            checked += 1
    assert checked > 10 and client.min() > 0
