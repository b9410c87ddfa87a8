"""perf.split_costs and device_block_times on worked numbers (docs/split.md §1)."""

import numpy as np
import pytest

from swarmplan.perf import memory, split_costs
from swarmplan.perf.model import device_block_times
from swarmplan.scenario.presets import MODEL_PRESETS
from swarmplan.scenario.swarm import ModelParams


def _llama7b():
    p = MODEL_PRESETS["llama-2-7b"]
    return ModelParams(
        "llama-2-7b", p["n_blocks"], p["params_per_block"], p["d_model"], p["kv_groups"], p["quant"], p["dtype"], None, None, None
    )


def test_activation_bytes_worked():
    assert split_costs.activation_bytes(_llama7b(), 512) == 512 * 4096 * 2 == 4_194_304  # fp16 hidden states


def test_one_way_transfer_worked():
    # 4,194,304 bytes on 100 Mbit/s (100,000 bit/ms) with a 20 ms RTT: 10 + 335.54432 ms.
    assert split_costs.one_way_transfer_ms(4_194_304, 100.0, 20.0) == pytest.approx(345.54432)
    with pytest.raises(ValueError):
        split_costs.one_way_transfer_ms(1, 0.0, 1.0)


def test_decode_batch_roofline_worked():
    assert split_costs.decode_batch_roofline(2.0, 312.0, 2.039) == 153  # 624 / 4.078 = 153.0
    assert split_costs.decode_batch_roofline(4.25 / 8, 312.0, 2.039) == 40  # NF4: 40.6
    assert split_costs.decode_batch_roofline(2.0, 0.001, 2.0) == 1  # never below one stream


def test_server_work_worked():
    # 26 blocks · (5 + 127 · 1 / 153) = 26 · 5.8300654 = 151.5817 ms
    assert split_costs.server_work_ms(26, 5.0, 1.0, 128, 153) == pytest.approx(26 * (5 + 127 / 153))
    assert split_costs.server_work_ms(3, 2.0, 1.0, 11, 1) == pytest.approx(36.0)  # 3 · (2 + 10)


def test_client_blocks_that_fit_worked():
    m = _llama7b()
    s_m, s_c = memory.block_gb(m), memory.kv_gb_per_request_per_block(m, 1024)
    assert s_m == pytest.approx(0.40881438, rel=1e-7) and s_c == pytest.approx(0.016777216)
    assert split_costs.client_blocks_that_fit(8.0, s_m, s_c) == 18  # 8 / 0.42559 = 18.8
    assert split_costs.client_blocks_that_fit(0.4, s_m, s_c) == 0


def test_device_block_times_roofline_and_preset_scaling():
    m = _llama7b()
    # Roofline laptop CPU: τ = 0.40881438 / 0.0896 = 4.56266 ms; slope = 2 · 202,383,360 / 0.9e9 = 0.449741 ms.
    tau, slope, base = device_block_times(m, [np.nan], [0.0], [0.0], [False], [True], [0.9], [0.0896], [1.0])
    assert tau[0] == pytest.approx(0.40881438 / 0.0896, rel=1e-6)
    assert slope[0] == pytest.approx(2 * 202_383_360 / 0.9e9)
    assert base[0] == 1.0
    # A100 preset fit scaled from BLOOM blocks: 3.2197 · 0.40881438 / 1.32338 = 0.99461 ms.
    tau, slope, base = device_block_times(m, [3.2197], [0.0743], [32.99], [True], [False], [312.0], [2.039], [1.0])
    assert tau[0] == pytest.approx(0.994606, rel=1e-5)
    assert slope[0] == pytest.approx(0.0743 * 202_383_360 / 2_466_437_120)
