"""The split model of a scenario: device classes, request types, the serving side, and the per-layer cost
stack of one (request type, device class) pair (docs/split.md §2).

Everything numeric comes from perf: per-block times (``perf.model.device_block_times``), block and KV
sizes (``perf.memory``), activations, transfers, the server's decode batch and work (``perf.split_costs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf import memory, split_costs
from swarmplan.perf.model import PerfModel, device_block_times
from swarmplan.perf.timing import prefill_ms_per_block
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import resolve_gpu
from swarmplan.scenario.swarm import ModelParams


@dataclass(frozen=True)
class Device:
    """One class of client devices, resolved to numbers."""

    name: str
    decode_ms: float  # τ per block per token
    prefill_slope: float
    prefill_base: float
    memory_gb: float
    max_blocks: int  # blocks it can hold with one request's KV (docs/split.md §1.5)
    uplink_mbit_per_s: float
    downlink_mbit_per_s: float
    rtt_ms: float
    share: float
    count: int
    budget_fraction: float

    def prefill_ms(self, input_tokens: int) -> float:
        return float(prefill_ms_per_block(self.prefill_slope, self.prefill_base, input_tokens))

    def work_ms(self, input_tokens: int, output_tokens: int) -> float:
        """Device time for one block of one request: τ^in(l_in) + (l_out − 1) τ (a device serves itself, B = 1)."""
        return float(split_costs.server_work_ms(1, self.prefill_ms(input_tokens), self.decode_ms, output_tokens, 1))


@dataclass(frozen=True)
class RequestType:
    name: str
    input_tokens: int
    output_tokens: int
    share: float
    sla_response_ms: float
    sla_ttft_ms: float
    sla_per_token_ms: float

    def sla_text(self) -> str:
        parts = []
        if np.isfinite(self.sla_response_ms):
            parts.append(f"response ≤ {self.sla_response_ms / 1000:g} s")
        if np.isfinite(self.sla_ttft_ms):
            parts.append(f"TTFT ≤ {self.sla_ttft_ms / 1000:g} s")
        if np.isfinite(self.sla_per_token_ms):
            parts.append(f"per token ≤ {self.sla_per_token_ms:g} ms")
        return ", ".join(parts)


@dataclass(frozen=True)
class ServerSide:
    """The server that runs the server side of every split (single-server SplitLLM shape)."""

    name: str
    index: int
    decode_ms: float
    prefill_slope: float
    prefill_base: float
    decode_batch: int
    kv_free_gb: float  # memory left for KV caches with all L blocks loaded

    def prefill_ms(self, input_tokens: int) -> float:
        return float(prefill_ms_per_block(self.prefill_slope, self.prefill_base, input_tokens))


@dataclass(frozen=True)
class SplitModel:
    L: int
    devices: tuple[Device, ...]
    types: tuple[RequestType, ...]
    server: ServerSide
    client_suffix: bool
    budget_resolution: int
    act_bytes_per_token: float
    model: ModelParams

    def kv_gb(self, t: RequestType) -> float:
        """docs/model.md §2.2 — one request's KV cache per block, sized for its l_in + l_out tokens."""
        return memory.kv_gb_per_request_per_block(self.model, t.input_tokens + t.output_tokens)

    def stack(self, t: RequestType, d: Device) -> LayerStack:
        return layer_stack(self, t, d)


@dataclass(frozen=True)
class LayerStack:
    """Per-block and per-boundary costs of one request type on one device class (docs/split.md §3).

    Blocks are 1..L (index b−1 in the arrays); boundary b sits after block b (0 = before block 1).
    Prefill ("_in") and one decode step ("_tok") are kept apart so TTFT and per-token SLAs can be checked.
    """

    client_in: np.ndarray  # (L,) client prefill time of each block
    client_tok: np.ndarray  # (L,) client decode time of each block
    server_in: np.ndarray
    server_tok: np.ndarray
    client_work: np.ndarray  # (L,) device time of each block for the whole request
    server_work: np.ndarray  # (L,) server GPU time of each block for the whole request (decode batched)
    up_in: np.ndarray  # (L+1,) device → server at boundary b: the l_in hidden states
    up_tok: np.ndarray  # (L+1,) one token's hidden state
    down_in_all: np.ndarray  # (L+1,) server → device, l_in hidden states (the client runs a suffix)
    down_in_last: np.ndarray  # (L+1,) server → device, the last position only (the client runs just the head)
    down_tok: np.ndarray  # (L+1,)
    output_tokens: int
    max_client_blocks: int
    sla_response_ms: float
    sla_ttft_ms: float
    sla_per_token_ms: float
    client_suffix: bool = True

    @property
    def L(self) -> int:
        return len(self.client_in)


def layer_stack(sm: SplitModel, t: RequestType, d: Device) -> LayerStack:
    """docs/split.md §3 — the uniform stack of a real model: every block costs the same on a side, every
    boundary carries a d_model-wide hidden state."""
    L, s = sm.L, sm.server
    ones, bounds = np.ones(L), np.ones(L + 1)
    act_in = sm.act_bytes_per_token * t.input_tokens
    act_1 = sm.act_bytes_per_token
    up_in = split_costs.one_way_transfer_ms(act_in, d.uplink_mbit_per_s, d.rtt_ms)
    up_tok = split_costs.one_way_transfer_ms(act_1, d.uplink_mbit_per_s, d.rtt_ms)
    down_all = split_costs.one_way_transfer_ms(act_in, d.downlink_mbit_per_s, d.rtt_ms)
    down_1 = split_costs.one_way_transfer_ms(act_1, d.downlink_mbit_per_s, d.rtt_ms)
    return LayerStack(
        client_in=d.prefill_ms(t.input_tokens) * ones,
        client_tok=d.decode_ms * ones,
        server_in=s.prefill_ms(t.input_tokens) * ones,
        server_tok=s.decode_ms * ones,
        client_work=d.work_ms(t.input_tokens, t.output_tokens) * ones,
        server_work=float(
            split_costs.server_work_ms(1, s.prefill_ms(t.input_tokens), s.decode_ms, t.output_tokens, s.decode_batch)
        )
        * ones,
        up_in=up_in * bounds,
        up_tok=up_tok * bounds,
        down_in_all=down_all * bounds,
        down_in_last=down_1 * bounds,
        down_tok=down_1 * bounds,
        output_tokens=t.output_tokens,
        max_client_blocks=min(d.max_blocks, L),
        sla_response_ms=t.sla_response_ms,
        sla_ttft_ms=t.sla_ttft_ms,
        sla_per_token_ms=t.sla_per_token_ms,
        client_suffix=sm.client_suffix,
    )


def _gpu_numbers(scenario: Scenario, gpu: str, field: str) -> tuple[dict, bool]:
    return resolve_gpu(scenario, gpu, field)


def _decode_batch(spec: dict, model) -> int:
    """docs/split.md §1.3 — roofline balance B* when the server type has TFLOPS and bandwidth, else 1."""
    if spec.get("tflops") is None or spec.get("bandwidth_gb_per_ms") is None:
        return 1
    return split_costs.decode_batch_roofline(
        memory.bytes_per_value(model.quant, model.dtype), spec["tflops"], spec["bandwidth_gb_per_ms"]
    )


def server_decode_batches(scenario: Scenario, pm: PerfModel) -> np.ndarray:
    """Decode batch B of every server of the swarm (docs/split.md §1.3; the scenario's value when given)."""
    given = scenario.split.server_decode_batch if scenario.split else None
    out = []
    for gpu in pm.swarm.server_gpus:
        spec, _ = _gpu_numbers(scenario, gpu, "servers")
        out.append(given or _decode_batch(spec, pm.swarm.model))
    return np.array(out, dtype=np.int64)


def _device(scenario: Scenario, pm: PerfModel, i: int) -> Device:
    spec = scenario.split.devices[i]
    where = f"split.devices.{i}"
    for key in ("uplink_mbit_per_s", "downlink_mbit_per_s"):
        value = getattr(spec, key)
        if not value > 0:
            raise SwarmplanError(
                f"{where}.{key}",
                f"device class {spec.name!r} has bandwidth {value:g} Mbit/s",
                "give a positive bandwidth in Mbit/s",
            )
    gpu, from_preset = _gpu_numbers(scenario, spec.gpu, f"{where}.gpu")
    model = pm.swarm.model
    tau, slope, base = device_block_times(
        model,
        [gpu.get("decode_ms_per_block") or np.nan],
        [gpu["prefill_ms_per_token_per_block"]],
        [gpu["prefill_ms_per_block"]],
        [from_preset],
        [gpu.get("timing") == "roofline"],
        [gpu.get("tflops") or np.nan],
        [gpu.get("bandwidth_gb_per_ms") or np.nan],
        [gpu.get("per_block_overhead_ms") or 1.0],
    )
    mem = spec.memory_gb if spec.memory_gb is not None else gpu["memory_gb"]
    tokens = max(t.input_tokens + t.output_tokens for t in scenario.split.request_types)
    kv = memory.kv_gb_per_request_per_block(model, tokens)
    fit = split_costs.client_blocks_that_fit(mem, pm.block_gb, kv)
    if gpu.get("max_blocks") is not None:
        fit = min(fit, int(gpu["max_blocks"]))
    if fit < 1:
        raise SwarmplanError(
            f"{where}.memory_gb",
            f"device class {spec.name!r} has {mem:g} GB, less than one block of {model.name} with its "
            f"KV cache ({pm.block_gb + kv:.4g} GB)",
            "give the device more memory, quantise the model, or drop the device class",
        )
    return Device(
        spec.name,
        float(tau[0]),
        float(slope[0]),
        float(base[0]),
        float(mem),
        fit,
        spec.uplink_mbit_per_s,
        spec.downlink_mbit_per_s,
        spec.rtt_ms,
        spec.share,
        spec.count,
        spec.budget_fraction,
    )


def _inf_if_none(x, scale):
    return float("inf") if x is None else float(x) * scale


def build_split_model(scenario: Scenario, pm: PerfModel) -> SplitModel:
    """Resolve the scenario's ``split:`` section against its swarm (``pm``)."""
    spec = scenario.split
    if spec is None:
        raise SwarmplanError(
            "split",
            "the scenario has no split: section",
            "add split: with devices and request_types (see docs/split.md), or use split-edge",
        )
    names = pm.swarm.server_names
    if spec.server is not None and spec.server not in names:
        raise SwarmplanError("split.server", f"no server named {spec.server!r}", f"use one of {', '.join(names)}")
    j = names.index(spec.server) if spec.server is not None else 0
    model = pm.swarm.model
    if model.d_model is None and model.activation_bytes_override is None:
        raise SwarmplanError(
            "model.d_model",
            "the hidden size is unknown, so activations cannot be sized",
            "give model.d_model, model.activation_bytes_per_token or a preset",
        )
    server_gpu, _ = _gpu_numbers(scenario, pm.swarm.server_gpus[j], "servers")
    kv_free = float(pm.memory_gb[j] - pm.L * pm.block_gb)
    server = ServerSide(
        names[j],
        j,
        float(pm.tau_ms[j]),
        float(pm.prefill_slope[j]),
        float(pm.prefill_base[j]),
        int(spec.server_decode_batch or _decode_batch(server_gpu, model)),
        kv_free,
    )
    types = tuple(
        RequestType(
            t.name,
            t.input_tokens,
            t.output_tokens,
            t.share,
            _inf_if_none(t.sla_response_s, 1000.0),
            _inf_if_none(t.sla_ttft_s, 1000.0),
            _inf_if_none(t.sla_per_token_ms, 1.0),
        )
        for t in spec.request_types
    )
    devices = tuple(_device(scenario, pm, i) for i in range(len(spec.devices)))
    return SplitModel(
        pm.L,
        devices,
        types,
        server,
        spec.client_suffix,
        spec.budget_resolution,
        float(split_costs.activation_bytes(model, 1)),
        model,
    )
