"""Every registered placement with every registered policy and waiting model, on one small swarm: each
placement covers the model within memory, each combination serves every request along a whole chain."""

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.methods.policies import POLICIES
from swarmplan.methods.registry import MethodContext, allocation_delay_ms, parse_method
from swarmplan.perf.chains import build_chain_graph, shortest_chain
from swarmplan.placement.registry import PLACEMENTS
from swarmplan.scenario.workload import Workload
from swarmplan.sim.run import run_policy

L = 6


def small_pm():
    gpus = [
        {"memory_gb": mem, "decode_ms_per_block": tau, "prefill_ms_per_block": 5.0, "prefill_ms_per_token_per_block": 0.1}
        for mem, tau in ((25, 1.0), (25, 2.0), (20, 1.5), (40, 3.0))
    ]
    return perf_of(explicit_scenario(gpus, [10, 20, 5, 30], n_blocks=L, placement={"R": 2}))


def workload(n=30, gap_ms=400.0):
    return Workload(np.arange(n) * gap_ms, np.full(n, 10), np.full(n, 40), np.zeros(n, dtype=np.int64))


@pytest.mark.parametrize("name", sorted(PLACEMENTS))
def test_every_placement_covers_the_model_within_memory(name):
    pm = small_pm()
    ctx = MethodContext(pm, np.random.default_rng(0), 0.5, 2, milp_time_limit_s=20)
    pl = ctx.placement(name, ctx.options_for(name))
    assert (pl.coverage(L) >= 1).all()
    used = pm.block_gb * pl.n_blocks + pm.kv_gb * pl.cache_slots * (pl.memory_model == "proposed")
    assert (used <= pm.memory_gb + 1e-9).all()
    g = build_chain_graph(pl.start, pl.n_blocks, L)
    _, servers, blocks = shortest_chain(g, np.ones(g.n_edges))
    assert sum(blocks) == L


COMBOS = [
    (p, q, w) for p in sorted(PLACEMENTS) if not p.startswith("milp") for q in sorted(POLICIES) for w in POLICIES[q].waiting
]


@pytest.mark.parametrize("placement,policy,waiting", COMBOS)
def test_every_combination_serves_every_request(placement, policy, waiting):
    pm = small_pm()
    method = parse_method(f"{placement}+{policy}+{waiting}")
    ctx = MethodContext(pm, np.random.default_rng(0), 2.5, 2)
    pl, pol = method.build(ctx)
    wl = workload()
    res = run_policy(pm, pl, wl, pol, allocation_delay_ms(method, "fair", pm), method.name)
    assert all(sum(b) == L for b in res.processed)
    assert np.isfinite(res.response_ms).all() and (res.response_ms > 0).all()
    assert res.summary()["requests"] == wl.n
