"""Server churn (docs/model.md §16): hand-computed cuts during prefill and decode, an outage of coverage,
an empty schedule changing nothing, and invariants under a random failure process."""

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.methods.registry import METHODS, MethodContext, allocation_delay_ms
from swarmplan.placement.types import Placement
from swarmplan.routing.wsrr import WsRrRouter
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.models import ChurnSpec
from swarmplan.scenario.workload import Workload, draw_workload
from swarmplan.sim.churn import ChurnEvent, ChurnSchedule, churn_schedule
from swarmplan.sim.engine import running_slots_peak, simulate
from swarmplan.sim.run import run_policy

# The tiny model of test_sim: L = 2, l_in = 10, l_out = 90, o = 100 ms, d_init = 70 ms, prefill 5 ms per
# block; t_1 = (rtt + 0.7049·l + 67) + 5·k and t_tok = (rtt + 100) + τ·k (docs/model.md §3.3).


def tiny(rtts, taus):
    gpus = [
        {"memory_gb": 10.0, "decode_ms_per_block": t, "prefill_ms_per_block": 5.0, "prefill_ms_per_token_per_block": 0.0}
        for t in taus
    ]
    return perf_of(explicit_scenario(gpus, rtts, n_blocks=2))


def whole_model_on_each(n):
    return Placement("hand", np.ones(n, dtype=np.int64), np.full(n, 2), np.full(n, 2), "proposed")


def one_request():
    return Workload(np.array([0.0]), np.array([10]), np.array([90]), np.zeros(1, dtype=np.int64))


def schedule(*events):
    return ChurnSchedule(tuple(ChurnEvent(t, j, up) for t, j, up in events))


def run(pm, n_servers, sched):
    pl = whole_model_on_each(n_servers)
    return simulate(pm, pl, one_request(), WsRrRouter(pm, pl), churn=sched)


def test_failure_during_prefill_restarts_on_the_other_server():
    pm = tiny([0.0, 10.0], [1.0, 2.0])
    res = run(pm, 2, schedule((110.0, 0, False)))
    # s0 (t_1 = 84.049) fails 40 ms into its prefill; s1 starts afresh at 110 ms: set-up 70, t_1 = 94.049,
    # 89 steps of 10 + 100 + 2·2 = 114 ms.
    assert res.chains[0] == (1,)
    assert res.response_ms[0] == pytest.approx(110 + 70 + 94.049 + 89 * 114)
    assert res.ttft_ms[0] == pytest.approx(110 + 70 + 94.049)
    s = res.summary()
    assert s["affected_requests"] == 1 and s["recomputed_tokens"] == 10
    planned = 70 + 84.049 + 89 * 102
    assert s["extra_latency_s"] == pytest.approx((110 + 70 + 94.049 + 89 * 114 - planned) / 1000)


def test_failure_during_decode_replays_the_prefix_and_keeps_tokens():
    pm = tiny([0.0, 10.0], [1.0, 2.0])
    t_f = 70 + 84.049 + 2.5 * 102  # three tokens out: the first, then two 102 ms steps
    res = run(pm, 2, schedule((t_f, 0, False)))
    replay = (10 + 0.7049 * 12 + 67) + 5 * 2  # the 12-position prefix (10 + 3 − 1) on s1
    assert res.response_ms[0] == pytest.approx(t_f + 70 + replay + 87 * 114)
    assert res.ttft_ms[0] == pytest.approx(70 + 84.049)  # the first token came before the failure
    assert res.decode_ms[0] == pytest.approx(2 * 102 + 87 * 114)
    assert res.summary()["recomputed_tokens"] == 12


def test_request_waits_for_coverage_and_completes_when_the_server_returns():
    pm = tiny([0.0], [1.0])
    t_f = 70 + 84.049 + 2.5 * 102
    res = run(pm, 1, schedule((t_f, 0, False), (5000.0, 0, True)))
    replay = (0.7049 * 12 + 67) + 5 * 2  # s0 lost its cache: the whole prefix is replayed on it
    assert res.response_ms[0] == pytest.approx(5000 + 70 + replay + 87 * 102)
    s = res.summary()
    assert s["waited_for_coverage"] == 1 and s["unfinished_requests"] == 0
    assert s["longest_coverage_outage_s"] == pytest.approx((5000 - t_f) / 1000)


def test_a_server_that_never_returns_leaves_requests_counted_not_dropped():
    pm = tiny([0.0], [1.0])
    res = run(pm, 1, schedule((500.0, 0, False)))
    s = res.summary()
    assert s["unfinished_requests"] == 1 and s["requests"] == 1
    assert np.isnan(res.response_ms[0])


def _methods_on(name, sched_spec, n=150, seed=0):
    sc, base = load_scenario(name)
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.realize import realize

    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(seed), base))
    wl = draw_workload(sc.workload, pm.swarm.n_clients, np.random.default_rng(seed + 1), n, base)
    sched = churn_schedule(sched_spec, pm.swarm.server_names, float(wl.arrival_ms[-1]), np.random.default_rng(seed + 2))
    ctx = MethodContext(pm, np.random.default_rng(seed + 3), sc.workload.rate_per_s)
    for m in ("petals", "petals-retry", "cg-bprr", "opt-rr", "gbp-cr"):
        pl, policy = METHODS[m].build(ctx)
        yield m, pm, pl, wl, policy, sched, allocation_delay_ms(METHODS[m], "fair", pm)


def test_empty_schedule_is_identical_to_no_churn():
    for m, pm, pl, wl, policy, sched, d in _methods_on("paper-abvt", ChurnSpec()):
        assert not sched
        a = run_policy(pm, pl, wl, policy, d, m).summary()
        b = run_policy(pm, pl, wl, policy, d, m, churn=sched).summary()
        assert a == b, m


def _down_intervals(sched):
    out, since = {}, {}
    for e in sched.events:
        if not e.up:
            since[e.server] = e.time_ms
        else:
            out.setdefault(e.server, []).append((since.pop(e.server), e.time_ms))
    for j, t in since.items():
        out.setdefault(j, []).append((t, np.inf))
    return out


def test_invariants_under_a_random_failure_process():
    spec = ChurnSpec(process={"mtbf_s": 150.0, "mean_downtime_s": 40.0})
    for m, pm, pl, wl, policy, sched, d in _methods_on("paper-abvt", spec):
        assert sched  # the process drew failures
        res = run_policy(pm, pl, wl, policy, d, m, churn=sched)
        ch = res.churn
        assert not ch.unfinished.any(), m  # every outage ends, so every request completes
        assert (ch.interruptions > 0).sum() > 0, m
        # Every session (cut or final) avoided its servers' downtimes: none ran on a down server.
        down = _down_intervals(sched)
        for r in range(wl.n):
            segs = ch.segments.get(r) or [(res.chains[r], res.processed[r], res.start_ms[r], res.completion_ms[r])]
            for servers, _, s, e in segs:
                for j in servers:
                    for f, u in down.get(j, []):
                        assert not (s < u and e > f), (m, r, j)
        # Final sessions never hold more than a server's slots.
        assert (running_slots_peak(res) <= np.asarray(pl.cache_slots)).all(), m
        assert res.summary()["affected_requests"] == int((ch.interruptions > 0).sum())
