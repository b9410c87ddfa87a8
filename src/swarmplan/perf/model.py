"""PerfModel: every time and memory quantity of one swarm, derived once (docs/model.md §2–3).

This is the single source of truth the placement methods, routers and the simulator read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.errors import NoSolutionError, SwarmplanError
from swarmplan.perf import memory, timing
from swarmplan.scenario.presets import FIT_REFERENCE_MODEL, MODEL_PRESETS
from swarmplan.scenario.swarm import ModelParams, Swarm

_REF = MODEL_PRESETS[FIT_REFERENCE_MODEL]
_REF_MODEL = ModelParams(
    FIT_REFERENCE_MODEL,
    _REF["n_blocks"],
    _REF["params_per_block"],
    _REF["d_model"],
    _REF["kv_groups"],
    _REF["quant"],
    _REF["dtype"],
    None,
    None,
    None,
)


def device_block_times(
    model: ModelParams,
    decode_ms,
    prefill_slope,
    prefill_base,
    from_preset,
    roofline,
    tflops,
    bandwidth_gb_per_ms,
    per_block_overhead_ms,
):
    """docs/model.md §3.1 — per-block (decode τ, prefill slope, prefill base) of devices for this model: preset
    fits scaled by block bytes / parameters, explicit times as written, roofline types derived from specs.
    Servers and split clients (docs/split.md §1) both get their times here."""
    s_m = memory.block_gb(model)
    decode_f, prefill_f = timing.fit_scale_factors(
        s_m, memory.block_gb(_REF_MODEL), model.params_per_block, _REF_MODEL.params_per_block
    )
    scale_d = np.where(from_preset, decode_f, 1.0)
    scale_p = np.where(from_preset, prefill_f, 1.0)
    tau = np.asarray(decode_ms, dtype=float) * scale_d
    slope = np.asarray(prefill_slope, dtype=float) * scale_p
    base = np.asarray(prefill_base, dtype=float) * scale_p
    roofline = np.asarray(roofline, dtype=bool)
    if roofline.any():
        params = model.params_per_block or s_m * 1e9 / 2  # size-only models: assume 2-byte weights
        r_tau, r_slope, r_base = timing.roofline_times(s_m, params, tflops, bandwidth_gb_per_ms, per_block_overhead_ms)
        tau = np.where(roofline, r_tau, tau)
        slope = np.where(roofline, r_slope, slope)
        base = np.where(roofline, r_base, base)
    return tau, slope, base


@dataclass(frozen=True)
class PerfModel:
    swarm: Swarm
    L: int
    block_gb: float  # s_m
    kv_gb: float  # s_c: one request's KV cache per block
    petals_cache_gb: float  # B_cache per block
    autograd_gb: float
    memory_gb: np.ndarray
    max_blocks: np.ndarray
    tau_ms: np.ndarray  # decode time per block per token
    prefill_slope: np.ndarray
    prefill_base: np.ndarray
    input_tokens: int  # nominal l_in used for planning
    output_tokens: int
    rtt_raw_ms: np.ndarray  # (clients, servers)
    rtt_ms: np.ndarray  # RTT_cj = raw + o
    rtt_in_ms: np.ndarray  # RTT^in_cj at the nominal l_in
    tau_in_ms: np.ndarray  # τ^in_j at the nominal l_in
    transfer_ms_per_token: np.ndarray | None = None  # (clients, servers) activation transfer per token (§17.2)

    @property
    def n_servers(self) -> int:
        return len(self.memory_gb)

    def rtt_in_for(self, input_tokens) -> np.ndarray:
        """RTT^in_cj for an input of ``input_tokens`` (§3.2), plus the prompt's activation transfer (§17.2)."""
        t = self.swarm.timing
        rtt_in = timing.input_rtt_ms(self.rtt_raw_ms, t.input_overhead_per_token_ms, t.input_overhead_base_ms, input_tokens)
        if self.transfer_ms_per_token is not None:
            rtt_in = rtt_in + self.transfer_ms_per_token * np.asarray(input_tokens)
        return rtt_in

    def slot_units(self, memory_model: str, input_tokens: int, output_tokens: int) -> int:
        """docs/model.md §17.3 — slots one request books per processed block. 1 (a slot is one request's
        cache of one block), except under PETALS' memory model with ``workload.petals_reserve: max_length``,
        where a slot is one token·block and a session reserves its declared max length l_in + l_out
        (handler.py rpc_inference: batch × max_length per block of its span)."""
        if memory_model == "petals" and self.swarm.petals_reserve == "max_length":
            return int(input_tokens) + int(output_tokens)
        return 1

    def tau_in_for(self, input_tokens) -> np.ndarray:
        return timing.prefill_ms_per_block(self.prefill_slope, self.prefill_base, input_tokens)

    def hop_service(self, client: int, server, processed, input_tokens=None, output_tokens=None):
        """Whole-request time of a hop into ``server`` processing ``processed`` blocks (docs/model.md §3.3)."""
        l_in = self.input_tokens if input_tokens is None else input_tokens
        l_out = self.output_tokens if output_tokens is None else output_tokens
        rtt_in = self.rtt_in_ms[client, server] if input_tokens is None else self.rtt_in_for(l_in)[client, server]
        tau_in = self.tau_in_ms[server] if input_tokens is None else self.tau_in_for(l_in)[server]
        return timing.hop_service_ms(rtt_in, self.rtt_ms[client, server], tau_in, self.tau_ms[server], processed, l_out)

    @classmethod
    def from_swarm(cls, swarm: Swarm) -> "PerfModel":
        model = swarm.model
        s_m = memory.block_gb(model)
        s_c = memory.kv_gb_per_request_per_block(model, swarm.cache_tokens)
        for j in np.flatnonzero(swarm.memory_gb < s_m):
            gpu = swarm.server_gpus[j]
            raise SwarmplanError(
                f"gpus.{gpu}.memory_gb",
                f"{swarm.memory_gb[j]:g} GB is less than one block of {model.name} ({s_m:.4g} GB)",
                "use a GPU with more memory, a quantised model (model.quant: nf4) or leave this server out",
            )
        t = swarm.timing
        transfer = None
        if swarm.link_bandwidth_mbps is not None:
            if model.d_model is None and model.activation_bytes_override is None:
                raise SwarmplanError(
                    "model.activation_bytes_per_token",
                    "a link bandwidth is given but the size of a token's activations is unknown",
                    "give d_model or activation_bytes_per_token",
                )
            transfer = timing.transfer_ms_per_token(memory.activation_bytes_per_token(model), swarm.link_bandwidth_mbps)
        tau, slope, base = device_block_times(
            model,
            swarm.decode_ms_per_block,
            swarm.prefill_ms_per_token_per_block,
            swarm.prefill_ms_per_block,
            swarm.times_from_preset,
            swarm.roofline,
            swarm.tflops,
            swarm.bandwidth_gb_per_ms,
            swarm.per_block_overhead_ms,
        )
        rtt = timing.token_rtt_ms(swarm.rtt_raw_client_ms, t.overhead_ms)
        rtt_in = timing.input_rtt_ms(
            swarm.rtt_raw_client_ms, t.input_overhead_per_token_ms, t.input_overhead_base_ms, swarm.input_tokens
        )
        if transfer is not None:  # docs/model.md §17.2 — a decode step moves one token, the prompt l_in
            rtt, rtt_in = rtt + transfer, rtt_in + transfer * swarm.input_tokens
        pm = cls(
            swarm=swarm,
            L=model.n_blocks,
            block_gb=s_m,
            kv_gb=s_c,
            petals_cache_gb=memory.petals_cache_gb_per_block(model),
            autograd_gb=memory.autograd_reserve_gb(model),
            memory_gb=swarm.memory_gb.astype(float),
            max_blocks=swarm.max_blocks,
            tau_ms=tau,
            prefill_slope=slope,
            prefill_base=base,
            input_tokens=swarm.input_tokens,
            output_tokens=swarm.output_tokens,
            rtt_raw_ms=swarm.rtt_raw_client_ms,
            rtt_ms=rtt,
            rtt_in_ms=rtt_in,
            tau_in_ms=timing.prefill_ms_per_block(slope, base, swarm.input_tokens),
            transfer_ms_per_token=transfer,
        )
        pm._check_coverable()
        return pm

    def _check_coverable(self) -> None:
        """docs/model.md §5.4 — even with cache for a single request, the servers must hold L blocks."""
        most = np.minimum(np.floor(self.memory_gb / (self.block_gb + self.kv_gb) + 1e-9), self.max_blocks)
        weights_only = np.minimum(np.floor(self.memory_gb / self.block_gb + 1e-9), self.max_blocks)
        if most.sum() < self.L and weights_only.sum() >= self.L:
            # The weights fit; one request's KV cache is what does not: name the workload field that sizes it.
            sw = self.swarm
            given = "cache_tokens" if sw.cache_tokens != sw.input_tokens + sw.output_tokens else "input_tokens + output_tokens"
            raise SwarmplanError(
                f"workload.{'cache_tokens' if given == 'cache_tokens' else 'output_tokens'}",
                f"one request's KV cache for {sw.cache_tokens:,} tokens ({given}) takes {self.kv_gb:.4g} GB per block, "
                f"so the servers can hold at most {int(most.sum())} of the model's {self.L} blocks "
                f"(the weights alone would fit)",
                "ask for fewer tokens per request (workload.input_tokens, output_tokens or cache_tokens)",
            )
        if most.sum() < self.L:
            raise NoSolutionError(
                "servers",
                f"the servers can hold at most {int(most.sum())} of the model's {self.L} blocks (with cache for one request)",
                "add servers or larger GPUs, or quantise the model (model.quant: nf4)",
            )
