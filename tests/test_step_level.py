"""Step-level prediction (docs/runtime.md §8): virtual time, processor sharing, hop timing on worked numbers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from swarmplan.perf.timing import backoff_ms
from swarmplan.sim.cpu_share import Background, CpuShare, fair_rate, water_fill
from swarmplan.sim.step_level import StepCosts, simulate_steps
from swarmplan.sim.virtual_time import run_virtual


def test_virtual_time_jumps_to_the_next_timer():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(5.0)
        a = loop.time()
        await asyncio.gather(asyncio.sleep(1.5), asyncio.sleep(0.25))
        return a, loop.time()

    assert run_virtual(main()) == (5.0, 6.5)


def test_water_fill_and_fair_rate_worked_numbers():
    assert water_fill(2, [3, 0.5]) == [1.5, 0.5]
    assert water_fill(2, [1, 2]) == [1.0, 1.0]
    assert water_fill(2, [0.2, 0.3]) == [0.2, 0.3]
    assert fair_rate(2, 3) == pytest.approx(2 / 3)  # three busy workers on two cores
    assert fair_rate(2, 1) == 1.0  # one thread never runs faster than one core
    assert fair_rate(2, 3, [2]) == pytest.approx(1 / 3)  # another session takes its half
    assert fair_rate(2, 3, [0.5]) == pytest.approx(0.5)  # …or only what it asks for
    assert fair_rate(2, 3, [2], grouped=False) == pytest.approx(2 / 5)  # per-thread fairness


def _run_cpu(cores, jobs, background=None):
    """jobs: (start_ms, proc, work_ms) → finish instants."""

    async def main():
        share = CpuShare(cores, background)

        async def one(start, proc, work):
            await asyncio.sleep(start / 1000)
            return await share.compute(proc, work)

        return await asyncio.gather(*(one(*j) for j in jobs))

    return run_virtual(main())


def test_three_busy_processes_on_two_cores_run_at_two_thirds():
    done = _run_cpu(2, [(0, "a", 10), (0, "b", 10), (0, "c", 10)])
    assert done == pytest.approx([15, 15, 15])


def test_a_process_computes_its_work_in_fifo_order():
    # One core: a's two items queue behind each other, b shares the core with a's first item.
    done = _run_cpu(1, [(0, "a", 10), (0, "a", 10), (0, "b", 10)])
    assert done == pytest.approx([20, 30, 20])  # both at 1/2 until 20, then a's second alone


def test_background_session_slows_the_swarm_while_it_runs():
    # One core, another session runnable from 5 to 15 ms: our one thread gets 1/2 then.
    bg = Background([5.0, 15.0], [(1.0,), ()])
    assert _run_cpu(1, [(0, "a", 10)], bg) == pytest.approx([15.0])  # 5 alone + 10 at 1/2 = 10 work


@dataclass
class _Route:
    servers: list
    processed: list
    waits_ms: list
    need: list


class _FixedChain:
    """A test policy: every request goes to server 0 (the drivers ask it, exactly as they ask a router)."""

    def route(self, state, now, client, l_in, l_out):
        return _Route([0], [2], [state.wait_ms(0, 2, now)], [2])


@dataclass
class _Timing:
    backoff_first_ms: float = 1000.0
    backoff_max_ms: float = 60000.0


class _Link:
    def __init__(self, rtt_ms):
        self.rtt_ms = rtt_ms

    def delay_s(self, nbytes):
        return self.rtt_ms / 2000.0


@dataclass
class _Workload:
    arrival_ms: np.ndarray
    output_tokens: np.ndarray
    client: np.ndarray

    @property
    def n(self):
        return len(self.arrival_ms)


def _costs(**kw):
    base = dict(
        decode_call_ms=0.0,
        decode_block_ms=2.0,  # 4 ms for the 2 blocks
        prefill_call_ms=0.0,
        prefill_call_token_ms=0.0,
        prefill_block_ms=3.0,  # 6 ms for the 2 blocks
        prefill_block_token_ms=0.0,
        server_message_ms=0.0,
        client_message_ms=0.0,
        client_head_ms=0.0,
        client_embed_ms=0.0,
        cores=1.0,
    )
    return StepCosts(**(base | kw))


def _simulate(arrivals, costs, slots=4, l_out=3, outages=()):
    n = len(arrivals)
    wl = _Workload(np.array(arrivals, float), np.full(n, l_out), np.zeros(n, int))
    return simulate_steps(
        wl,
        [[1, 2, 3]] * n,
        _FixedChain(),
        lambda *a: 100.0,
        _Timing(),
        [slots],
        [2],
        {0: {0: _Link(10.0)}},
        costs,
        hidden=8,
        outages=list(outages),
    )


def test_one_request_hop_by_hop():
    # prefill hop 5 + 6 + 5 = 16 → token 1; each decode hop 5 + 4 + 5 = 14 → tokens at 30, 44.
    (rec,) = _simulate([0.0], _costs())
    assert (rec.start_ms, rec.first_token_ms, rec.done_ms) == pytest.approx((0.0, 16.0, 44.0))


def test_second_session_waits_for_the_servers_one_worker():
    # Both prefills reach the server at 5: the worker runs the first 5→11, the second 11→17. The first's reply
    # is due at 16 but its timer runs on the server's loop, busy with the second's forward until 17 (Eq. 8.7):
    # token 1 at 17; the second's at 22. Decodes: the first's reaches the server at 22 (22→26, reply due 31),
    # the second's at 27 (27→31); replies at 31 and 36; last decodes 36→40 (reply 45) and 41→45 (reply 50).
    a, b = _simulate([0.0, 0.0], _costs())
    assert (a.first_token_ms, a.done_ms) == pytest.approx((17.0, 45.0))
    assert (b.first_token_ms, b.done_ms) == pytest.approx((22.0, 50.0))


def test_a_delayed_frame_leaves_only_when_its_senders_loop_is_free():
    # Eq. 8.7, without ties. Client messages cost 1 (0.5 to send, 0.5 to read), 2 cores. A (at 0): sent 0→0.5,
    # delay → 5.5, forward 5.5→11.5, reply due 16.5. B (at 2): sent 2→2.5, at the server 7.5, waits for the
    # worker: 11.5→17.5. A's reply timer fires at 16.5 on a loop busy with B's forward: it leaves at 17.5, read
    # 17.5→18 → token 1 at 18 (17 if the timer fired on time). B's reply due 22.5, the loop free: read → 23.
    a, b = _simulate([0.0, 2.0], _costs(client_message_ms=1.0, cores=2.0))
    assert (a.first_token_ms, b.first_token_ms) == pytest.approx((18.0, 23.0))


def test_client_cpu_and_cores_add_up():
    # Client work per token (head 1 + embed 1) and per message (0.5 + 0.5) on its own thread, 2 cores:
    # embed 1, send 0.5, 5, prefill 6, 5, read 0.5 → head 1 → token at 19; then embed 1, send 0.5, 5, decode 4,
    # 5, read 0.5, head 1 → 36; again → 53.
    c = _costs(client_head_ms=1.0, client_embed_ms=1.0, client_message_ms=1.0, cores=2.0)
    (rec,) = _simulate([0.0], c)
    assert (rec.first_token_ms, rec.done_ms) == pytest.approx((19.0, 53.0))


def test_full_server_makes_the_second_request_wait_with_backoff_like_the_live_client():
    # 2 slots: the second request books behind the first (predicted completion 100 ms) and retries
    # admission at PETALS' first back-off, 1 s after arrival, exactly as the live client's driver does.
    a, b = _simulate([0.0, 0.0], _costs(), slots=2)
    assert a.done_ms == pytest.approx(44.0)
    assert b.start_ms == pytest.approx(backoff_ms(100.0, 1000.0, 60000.0))
    assert b.done_ms == pytest.approx(b.start_ms + 44.0)


def test_many_background_changes_always_progress():
    # Change points that do not round-trip exactly through the loop's clock in seconds must not stall it.
    times = [i * 0.1 + 1e-3 / 3 for i in range(2000)]
    bg = Background(times, [((i % 3) * 0.5,) for i in range(2000)])
    (done,) = _run_cpu(1, [(0, "a", 150.0)], bg)
    # By hand: 1/3 µs alone; intervals 0..1998 of 0.1 ms at rates 1, 1/2, 1/2 (667, 666, 666 of them) do
    # 133.3 ms of work by 199.9003 ms; the last level (1/2) does the remaining 16.6997 in 33.3993 ms.
    assert done == pytest.approx(199.9 + 1e-3 / 3 + 2 * (150.0 - 1e-3 / 3 - 133.3), abs=1e-6)


def test_weighted_water_fill_and_nice_weight_worked_numbers():
    from swarmplan.sim.cpu_share import nice_weight

    assert nice_weight(0) == 1024.0
    assert nice_weight(19) == pytest.approx(14.757, abs=1e-3)  # the kernel's table says 15
    assert nice_weight(5) / nice_weight(6) == pytest.approx(1.25)  # one nice step ≈ 10 % of a CPU
    # 2 cores, two sessions of 2 runnable threads, weights 1024 and 14.757: λ = 2 / 1038.757.
    assert water_fill(2, [2, 2], [1024, 14.757]) == pytest.approx([2 * 1024 / 1038.757, 2 * 14.757 / 1038.757])
    # A session asking less than its weighted share (2 · 14.757 / 1038.757 = 0.0284) gets all of it; more: the share.
    assert water_fill(2, [3, 0.01], [1024, 14.757]) == pytest.approx([1.99, 0.01])
    assert water_fill(2, [3, 0.1], [1024, 14.757]) == pytest.approx([2 * 1024 / 1038.757, 2 * 14.757 / 1038.757])
    # Equal weights are the unweighted fill.
    assert water_fill(2, [3, 0.5], [7, 7]) == water_fill(2, [3, 0.5])
    # The swarm's 3 busy threads against a nice-19 session with 2 runnable: nearly the whole host.
    assert fair_rate(2, 3, [2], weights=[14.757]) == pytest.approx(2 * 1024 / 1038.757 / 3)
    assert fair_rate(2, 3, [2], weights=[1024]) == pytest.approx(1 / 3)  # same weight: the unweighted 1/3


def test_background_weights_slow_the_swarm_by_their_share():
    # One core; another session of 1 runnable thread at weight 1024/3: the swarm gets 3/4, so 30 ms of work
    # takes 40 ms. Without weights the same session takes half: 60 ms.
    bg = Background([0.0], [(1.0,)], [(1024 / 3,)])
    assert _run_cpu(1, [(0, "a", 30.0)], bg) == pytest.approx([40.0])
    assert _run_cpu(1, [(0, "a", 30.0)], Background([0.0], [(1.0,)])) == pytest.approx([60.0])


def test_per_link_hop_costs_replace_the_calibration_scalars():
    from swarmplan.sim.step_level import HopCosts

    # The link (RTT 10) has its own costs: o_c 1 (0.5 + 0.5 per hop), o_s 2 on the server's worker, δ 1.5 per
    # delayed frame. Prefill hop: 0.5 + (5 + 1.5) + (2 + 6) + (5 + 1.5) + 0.5 = 22 → first token at 22;
    # decode hops 0.5 + 6.5 + (2 + 4) + 6.5 + 0.5 = 20 → 42, 62.
    c = _costs(wake_ms=9.0, server_message_ms=9.0, client_message_ms=9.0, hops={10.0: HopCosts(2.0, 1.0, 1.5)})
    (rec,) = _simulate([0.0], c)
    assert (rec.first_token_ms, rec.done_ms) == pytest.approx((22.0, 62.0))
    # A link it has no entry for falls back to the scalars.
    assert c.hop(12.5) == HopCosts(9.0, 9.0, 9.0)
    assert c.hop(10.0004) == HopCosts(2.0, 1.0, 1.5)  # RTTs are keyed to the microsecond
