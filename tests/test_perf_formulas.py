"""Every formula of perf pinned to the worked numbers of docs/model.md (Sun et al. 2025; PETALS)."""

import math

import numpy as np
import pytest

from swarmplan.perf import memory, timing
from swarmplan.perf.concurrency import cgbp_bound_ms, cgbp_num_blocks, r_max, round_half_up, target_concurrency
from swarmplan.perf.petals_rules import petals_num_blocks, petals_throughput
from swarmplan.scenario.presets import GPU_PRESETS, MODEL_PRESETS
from swarmplan.scenario.swarm import ModelParams


def model(name, **over):
    p = dict(MODEL_PRESETS[name])
    p.update(over)
    return ModelParams(
        name, p["n_blocks"], p["params_per_block"], p["d_model"], p["kv_groups"], p["quant"], p["dtype"], None, None, None
    )


BLOOM = model("bloom-176b")
S_M = memory.block_gb(BLOOM)
S_C = memory.kv_gb_per_request_per_block(BLOOM, 148)
B_CACHE = memory.petals_cache_gb_per_block(BLOOM)


def test_bloom_block_size_is_1_3234_gb():
    assert S_M == pytest.approx(1.3234, abs=5e-5)


@pytest.mark.parametrize("l_out, expected", [(64, 0.004817), (128, 0.008487), (256, 0.015827), (384, 0.023167), (512, 0.030507)])
def test_kv_per_block_per_request_for_the_l_out_sweep(l_out, expected):
    assert memory.kv_gb_per_request_per_block(BLOOM, l_out + 20) == pytest.approx(expected, abs=5e-7)


def test_petals_fixed_cache_and_session_capacity():
    assert B_CACHE == pytest.approx(0.234881, abs=5e-7)
    assert memory.session_capacity_petals(B_CACHE, S_C) == 27
    for l_out, sessions in [(64, 48), (256, 14), (384, 10), (512, 7)]:
        assert memory.session_capacity_petals(B_CACHE, memory.kv_gb_per_request_per_block(BLOOM, l_out + 20)) == sessions


def test_slot_counts_both_memory_models():
    # PETALS: ⌊m B_cache / s_c⌋ → 4 MIG blocks give 110 slots, 53 A100 blocks 1466 (BPRR §14 item 3).
    assert memory.cache_slots_petals(np.array([4, 53]), B_CACHE, S_C).tolist() == [110, 1466]
    # Proposed: ⌊(M − s_m m)/s_c⌋ → a MIG with 4 blocks keeps 448 slots.
    assert memory.cache_slots_proposed(np.array([9.1]), np.array([4]), S_M, S_C).tolist() == [448]


def test_a100_with_53_blocks_admits_21_sessions_at_80_gb():
    assert memory.session_capacity_proposed(np.array([80.0]), np.array([53]), S_M, S_C).tolist() == [21]


@pytest.mark.parametrize("mem, blocks", [(86.13, 53), (9.1, 4), (79.13, 49), (8.2, 3), (84.973, 53), (10.2, 5)])
def test_petals_number_of_blocks_bloom(mem, blocks):
    autograd = memory.autograd_reserve_gb(BLOOM)
    assert autograd == pytest.approx(2.147483648)
    assert petals_num_blocks(np.array([mem]), S_M, B_CACHE, autograd, 70).tolist() == [blocks]


def test_petals_number_of_blocks_llama_2_70b():
    llama = model("llama-2-70b")
    s_m, cache, autograd = memory.block_gb(llama), memory.petals_cache_gb_per_block(llama), memory.autograd_reserve_gb(llama)
    assert cache * 1e9 == 64 * 2**20  # 2·8192·16384/8·2 bytes = 64 MiB
    gib = 2**30 / 1e9
    assert petals_num_blocks(np.array([24 * gib]), s_m, cache, autograd, 80).tolist() == [46]
    assert petals_num_blocks(np.array([79.2 * gib]), s_m, cache, autograd, 80).tolist() == [80]
    bf16 = model("llama-2-70b", quant="none")
    assert petals_num_blocks(np.array([79.2 * gib]), memory.block_gb(bf16), cache, autograd, 80).tolist() == [46]


def test_mig_clamp_applies_after_the_rule():
    autograd = memory.autograd_reserve_gb(BLOOM)
    assert petals_num_blocks(np.array([10.2]), S_M, B_CACHE, autograd, 70, max_blocks=np.array([4])).tolist() == [4]


def test_petals_throughput_estimate():
    a100, mig = GPU_PRESETS["a100-80gb"], GPU_PRESETS["mig-1g-10gb"]
    assert petals_throughput(a100["forward_rps"], a100["network_rps"], 53) == pytest.approx(771.5, abs=0.05)
    assert petals_throughput(mig["forward_rps"], mig["network_rps"], 4) == pytest.approx(1103.1, abs=0.05)


def test_cgbp_number_of_blocks():
    mem = np.array([86.13, 9.1])
    assert cgbp_num_blocks(mem, S_M, S_C, 35, 70).tolist() == [53, 5]
    assert cgbp_num_blocks(mem, S_M, S_C, 35, 70, max_blocks=np.array([70, 4])).tolist() == [53, 4]
    assert cgbp_num_blocks(mem, S_M, S_C, 37, 70).tolist()[0] == 52
    # Clustered experiment: 41 per A100 and 3 per MIG from M = 86.13 / 8.2 GB and R in 86..91 (BPRR §14.21).
    for R in range(86, 92):
        assert cgbp_num_blocks(np.array([86.13, 8.2]), S_M, S_C, R, 70).tolist() == [41, 3]


@pytest.mark.parametrize("a100, mig, expected", [(2, 7, 196), (4, 15, 480), (12, 48, 1176)])
def test_r_max_for_the_three_topologies(a100, mig, expected):
    mem = np.array([86.13] * a100 + [9.1] * mig)
    assert r_max(mem, S_M, S_C, 70) == expected


def test_target_concurrency_rule():
    # λ = 5e-4 /ms, T₁ = 60 s → λT₁ = 30, 30 + √30 = 35.48 → 35.
    assert target_concurrency(5e-4, 60_000, 196) == 35
    assert target_concurrency(5e-4, 60_000, 20) == 20
    assert round_half_up(2.5) == 3 and round_half_up(3.5) == 4  # MATLAB rounding, not banker's


def test_bound_u_hand_computed():
    # Two servers in order: t = 300 (m = 50), 200 (m = 30), L = 70, τ of the K-th = 3:
    # U = 300 + 200 − 3·(80 − 70) = 470.
    assert cgbp_bound_ms([300, 200], [50, 30], 3.0, 2, 70) == pytest.approx(470.0)


def test_prefill_and_input_rtt_fits():
    assert timing.prefill_ms_per_block(0.0743, 32.99, 20) == pytest.approx(34.476)
    assert timing.prefill_ms_per_block(0.1041, 206.3547, 20) == pytest.approx(208.4367)
    assert timing.input_rtt_ms(0.0, 0.7049, 67.0, 20) == pytest.approx(81.098)
    assert timing.token_rtt_ms(12.0, 100.0) == 112.0


def test_chain_times_and_request_service():
    # Chain of two hops: RTT 110, 120 ms; τ 3, 16 ms; 53 and 17 blocks.
    t_tok = timing.chain_token_ms([110, 120], [3.0, 16.0], [53, 17])
    assert t_tok == pytest.approx(110 + 159 + 120 + 272)
    t1 = timing.chain_first_token_ms([191, 201], [34.0, 208.0], [53, 17])
    assert t1 == pytest.approx(191 + 1802 + 201 + 3536)
    assert timing.request_service_ms(t1, t_tok, 128) == pytest.approx(t1 + 127 * t_tok)
    hop = timing.hop_service_ms(191, 110, 34.0, 3.0, 53, 128)
    assert hop == pytest.approx((191 + 127 * 110) + (34 + 127 * 3) * 53)


@pytest.mark.parametrize("wait_s, backoff_s", [(0, 0), (0.5, 1), (1, 1), (1.1, 3), (7, 7), (100, 123), (130, 183), (200, 243)])
def test_backoff_rounds_up_to_the_retry_schedule(wait_s, backoff_s):
    assert timing.backoff_ms(wait_s * 1000) == backoff_s * 1000


def test_fit_scaling_is_identity_for_the_reference_model():
    d, p = timing.fit_scale_factors(S_M, S_M, BLOOM.params_per_block, BLOOM.params_per_block)
    assert d == 1.0 and p == 1.0
    assert math.isclose(memory.kv_bytes_per_token_per_block(BLOOM), 57344)
