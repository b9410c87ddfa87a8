"""Runtime pieces with worked numbers: wire frames, link delay, the calibration fits, MAPE, live slot state."""

import asyncio

import numpy as np
import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.routing.slots import SlotBook
from swarmplan.runtime.calibrate import fit_calibration, fit_cpu, fit_prefill, message_costs
from swarmplan.runtime.host_load import LoadSampler, runnable_by_session
from swarmplan.runtime.live import LiveSlots
from swarmplan.runtime.model import LlamaArch, arch_from_model_params, check_fits_memory, preset_arch, require_runtime
from swarmplan.runtime.validate import mape
from swarmplan.runtime.wire import Link, encode, read_frame


def test_frame_round_trip_is_header_plus_raw_bytes():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    frame = encode({"op": "decode", "session": "a"}, x)
    assert frame.endswith(x.tobytes()) and b"pickle" not in frame

    async def read():
        r = asyncio.StreamReader()
        r.feed_data(frame)
        r.feed_eof()
        return await read_frame(r)

    header, y = asyncio.run(read())
    assert header["op"] == "decode" and header["shape"] == [1, 2, 3]
    assert np.array_equal(x, y)


def test_frame_with_lying_header_is_rejected():
    bad = bytearray(encode({"op": "x"}, np.zeros(4, np.float32)))
    bad = bad.replace(b'"shape":[4]', b'"shape":[5]')

    async def read():
        r = asyncio.StreamReader()
        r.feed_data(bytes(bad))
        r.feed_eof()
        return await read_frame(r)

    with pytest.raises(ConnectionError):
        asyncio.run(read())


def test_link_delay_worked_example():
    # 20 ms RTT → 10 ms one way; 1000 bytes at 8 Mbit/s → 1 ms.
    assert Link(20.0, 8.0).delay_s(1000) == pytest.approx(0.011)
    assert Link(20.0).delay_s(10**6) == pytest.approx(0.010)


def test_calibration_fit_recovers_known_parameters():
    tau, slope, base, o, p, q, rtt = 0.8, 0.05, 1.5, 2.0, 0.03, 1.2, 10.0
    call, call_l = 0.4, 0.01  # per forward call: lands in the hop overhead, not in the per-block times
    dec = [(n, rtt + o + tau * n, call + tau * n) for n in (1, 2, 3, 4) for _ in range(3)]
    pre = [
        (n, l, rtt + p * l + q + n * (slope * l + base), call + call_l * l + n * (slope * l + base))
        for n in (1, 2, 3)
        for l in (8, 16, 32)
    ]
    fit = fit_calibration(dec, pre, rtt)
    assert fit["decode_ms_per_block"] == pytest.approx(tau)
    assert fit["overhead_ms"] == pytest.approx(o)
    assert fit["prefill_ms_per_token_per_block"] == pytest.approx(slope)
    assert fit["prefill_ms_per_block"] == pytest.approx(base)
    assert fit["input_overhead_per_token_ms"] == pytest.approx(p)
    assert fit["input_overhead_base_ms"] == pytest.approx(q)
    a, b, alpha, beta = fit_prefill([1, 2, 1, 2], [10, 10, 20, 20], [3 + 1 * 2, 3 + 2 * 2, 3.1 + 2.5, 3.1 + 5])
    assert (a, b, alpha, beta) == pytest.approx((0.05, 1.5, 2.9, 0.01))  # 5 = 2.9 + 0.1 + 1.5 + 0.5


def test_mape_worked_example():
    assert mape([100, 200], [110, 150]) == pytest.approx((0.1 + 0.25) / 2)


def test_live_slots_wait_matches_slot_book():
    """With the same bookings, the live state gives the simulator's waits (docs/model.md §9.3)."""
    book, live = SlotBook(np.array([6, 4])), LiveSlots([6, 4])
    for r, (done, servers, ks) in enumerate([(50.0, [0, 1], [2, 2]), (80.0, [0], [3]), (30.0, [1], [1])]):
        book.book(r, done, servers, ks)
        live.book(r, servers, ks, done)
    for j, k in [(0, 1), (0, 2), (0, 4), (0, 6), (0, 7), (1, 1), (1, 2), (1, 3), (1, 5)]:
        assert live.wait_ms(j, k, 10.0) == book.wait_ms(j, k, 10.0), (j, k)
        assert live.free(j) == book.free(j)
    assert live.sessions == book.sessions
    live.unbook(1)
    assert live.free(0) == 4 and live.wait_ms(0, 5, 10.0) == pytest.approx(40.0)
    live.set_dead(1)
    assert live.wait_ms(1, 1, 0.0) == float("inf") and live.dead(1)


def test_live_slots_admission_counts_servers_not_bookings():
    live = LiveSlots([4])
    live.book(0, [0], [4], 100.0)  # booked by a waiting request: routing sees no room …
    assert live.free(0) == 0
    assert live.can_admit([0], [4])  # … but the server itself would accept
    live.admitted(0, 3)
    assert not live.can_admit([0], [2]) and live.can_admit([0], [1])


def test_arch_from_scenario_model_numbers():
    arch = preset_arch("llama-small")
    assert arch.params_per_block == 2 * 256 * 256 + 2 * 256 * 256 + 3 * 256 * 688 + 2 * 256 == 791040

    class M:
        name, n_blocks, d_model, params_per_block, kv_groups = "m", 8, 256, 791040, 1

    again = arch_from_model_params(M)
    assert (again.n_layers, again.hidden, again.intermediate, again.heads, again.kv_heads) == (8, 256, 688, 4, 4)
    M.params_per_block = 791041
    with pytest.raises(SwarmplanError, match="params_per_block"):
        arch_from_model_params(M)


def test_llama_2_7b_numbers_give_its_mlp_width():
    class M:
        name, n_blocks, d_model, params_per_block, kv_groups = "llama-2-7b", 32, 4096, 202_383_360, 1

    assert arch_from_model_params(M).intermediate == 11008


def test_model_too_big_is_one_clear_error():
    big = LlamaArch(n_layers=80, hidden=8192, intermediate=28672, heads=64, kv_heads=8)
    with pytest.raises(SwarmplanError, match="smaller model"):
        check_fits_memory(big, 6, available_bytes=16 * 10**9)
    check_fits_memory(preset_arch("llama-tiny"), 6, available_bytes=16 * 10**9)


def test_missing_extra_is_one_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(SwarmplanError, match=r"pip install -e \"\.\[runtime\]\""):
        require_runtime()


def test_cpu_fit_recovers_known_work():
    c, tau, alpha, beta, a, b = 0.7, 1.3, 2.0, 0.02, 0.05, 1.1
    dec = [(n, c + tau * n) for n in (1, 2, 3, 4) for _ in range(3)]
    pre = [(n, l, alpha + beta * l + n * (b + a * l)) for n in (1, 2, 3) for l in (8, 16, 32)]
    fit = fit_cpu(dec, pre)
    assert (fit["decode_cpu_call_ms"], fit["decode_cpu_block_ms"]) == pytest.approx((c, tau))
    assert (fit["prefill_cpu_call_ms"], fit["prefill_cpu_call_token_ms"]) == pytest.approx((alpha, beta))
    assert (fit["prefill_cpu_block_ms"], fit["prefill_cpu_block_token_ms"]) == pytest.approx((b, a))


def test_message_costs_worked_example():
    # 100 echoes: servers' CPU grew 80 ms, client's 60 ms → 0.8 and 0.6 per message; hops of 12 ms at RTT 10:
    # 12 = 10 + 0.8 + 0.6 + 2δ → δ = 0.3.
    got = message_costs([11.0, 12.0, 13.0], 80.0, 60.0, 100, 10.0)
    assert got == pytest.approx(dict(server_message_cpu_ms=0.8, client_message_cpu_ms=0.6, wake_ms=0.3))


def test_other_sessions_runnable_processes_are_counted_and_ours_left_out():
    import os
    import subprocess
    import sys

    # A busy process in a new session is seen; this (running) process's own session is not.
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        seen = 0
        for _ in range(50):
            counts = runnable_by_session(os.getsid(0))
            seen = max(seen, counts.get(proc.pid, 0))
            if seen:
                break
        assert seen == 1
        assert os.getsid(0) not in runnable_by_session(os.getsid(0))
    finally:
        proc.kill()
        proc.wait()


def test_background_windows_average_each_session():
    s = LoadSampler(grouped=True)
    s.samples = [(0.0, {7: 1}), (0.1, {7: 1, 9: 2}), (0.3, {}), (0.4, {9: 1})]
    bg = s.background(0.0)
    assert bg.times_ms == pytest.approx([0.0, 300.0])
    assert bg.demands == [(1.0, 1.0), (0.5,)]
    assert bg.weights == [(1024.0, 1024.0), (1024.0,)]  # nice unknown: the default weight
    s.nices, s.own_nice = {9: 19.0}, 0.0
    bg = s.background(0.0)
    w19 = 1024 / 1.25**19
    assert [list(w) for w in bg.weights] == [[1024.0, pytest.approx(w19)], [pytest.approx(w19)]]
    assert bg.own_weight == 1024.0


def test_autogroup_nice_of_a_session_is_read_from_proc():
    import os
    import subprocess
    import sys

    from swarmplan.runtime.host_load import autogroup_enabled, autogroup_nice

    if not autogroup_enabled():
        pytest.skip("autogroup is off on this kernel")
    # A new session gets its own autogroup; raising its nice (allowed without privileges) is what we read back.
    code = "import time; open('/proc/self/autogroup', 'w').write('7'); print('ok', flush=True); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ok"
        assert autogroup_nice(proc.pid) == 7.0
        assert autogroup_nice(os.getpid()) != 7.0 or os.getsid(0) == proc.pid
        assert autogroup_nice(10**9) == 0.0  # no such process
    finally:
        proc.kill()
        proc.wait()


def test_hop_costs_worked_example():
    from swarmplan.runtime.link_costs import distinct_rtts, hop_costs

    # 48 hops: the server's CPU outside forwards grew 48 ms, the client's 24 ms → o_s 1, o_c 0.5; hops of
    # 14, 15, 16 ms around forwards of 7 ms at RTT 3: δ = (8 − 3 − 1 − 0.5) / 2 = 1.75.
    got = hop_costs([14.0, 15.0, 16.0], [7.0, 7.0, 7.0], 48.0, 24.0, 48, 3.0)
    assert (got.server_message_ms, got.client_message_ms, got.wake_ms) == pytest.approx((1.0, 0.5, 1.75))
    assert hop_costs([4.0], [1.0], 0.0, 0.0, 1, 0.0).wake_ms == 0.0  # no delayed frame, no timer
    assert distinct_rtts([[2.8801, 2.88, 0.0], [float("inf"), 12.5, 2.8804]]) == [2.88, 12.5]


def test_tpot_and_mape_leave_out_what_has_no_decode_step():
    from swarmplan.runtime.validate import mape, tpot

    assert tpot(1000.0, 100.0, 10) == pytest.approx(100.0)
    assert np.isnan(tpot(50.0, 50.0, 1))
    assert mape([100.0, float("nan"), 200.0], [110.0, 5.0, 150.0]) == pytest.approx((0.1 + 0.25) / 2)


def test_forward_noise_reports_the_spread_of_identical_work():
    from swarmplan.runtime.host_noise import forward_noise

    got = forward_noise(preset_arch("llama-tiny"), blocks=2, l_in=4, l_out=3, rounds=5)
    assert got["rounds"] == 5
    assert 0 < got["min_ms"] <= got["mean_ms"] <= got["max_ms"]
    # CV of 5 positive samples: at most sqrt(n − 1) = 2 (all but one equal to zero), never negative.
    assert 0.0 <= got["cv"] <= 2.0


def test_in_place_scale_pools_the_servers_worked_example():
    from types import SimpleNamespace

    from swarmplan.runtime.validate import in_place_scale
    from swarmplan.sim.step_level import StepCosts

    costs = StepCosts(1.0, 1.5, 1.0, 0.0, 2.0, 0.0, 0.5, 0.5, 0.1, 0.1)  # decode c + τ·n, prefill α + n·b
    placement = SimpleNamespace(n_blocks=np.array([4, 0, 8]))
    # fitted decode: 1 + 1.5·4 = 7 and 1 + 1.5·8 = 13; measured 8.4 and 13.6 → (8.4 + 13.6) / (7 + 13) = 1.1.
    # fitted prefill: 1 + 2·4 = 9 and 1 + 2·8 = 17; measured 9 and 17 → 1.0.
    got = in_place_scale(costs, placement, {0: (16, 9.0, 8.4), 2: (16, 17.0, 13.6)})
    assert got == pytest.approx((1.0, 1.1))
    assert in_place_scale(costs, placement, {}) is None
    scaled = costs.forwards_scaled(2.0, 1.1)  # whole forwards scale: 1.1 × 7 and 2 × 9 (prefill of n = 4)
    assert (scaled.decode_ms(4), scaled.prefill_ms(4, 16)) == pytest.approx((7.7, 18.0))


def test_precise_loop_only_where_select_can_watch_every_descriptor():
    import selectors

    from swarmplan.runtime.wire import precise_loop_fits, run_precise

    async def kind():
        return type(asyncio.get_running_loop()._selector)

    assert precise_loop_fits(10) and not precise_loop_fits(5000)
    assert run_precise(kind()) is selectors.SelectSelector  # microsecond timeouts
    assert run_precise(kind(), descriptors=5000) is not selectors.SelectSelector  # the default loop instead
