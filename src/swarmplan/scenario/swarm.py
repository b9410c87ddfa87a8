"""A concrete swarm: one draw of a Scenario (servers at nodes, GPU numbers, RTTs) as plain arrays.

Placement methods, routers and the simulator work on this (through perf.PerfModel), never on the YAML.
Server order matters only for tie-breaking and follows the authors' simulator for drawn servers
(slower GPU types first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.scenario.models import TimingSpec
from swarmplan.scenario.server_rtt import ServerRtt


@dataclass(frozen=True)
class ModelParams:
    """Architecture numbers of the LLM; perf.memory turns them into GB."""

    name: str
    n_blocks: int
    params_per_block: int | None
    d_model: int | None
    kv_groups: int
    quant: str
    dtype: str
    block_gb_override: float | None
    kv_bytes_override: float | None
    attn_cache_tokens_override: int | None
    activation_bytes_override: float | None = None  # bytes of one token's hidden state (docs/model.md §17.2)


@dataclass(frozen=True)
class Swarm:
    scenario: str
    model: ModelParams
    server_names: tuple[str, ...]
    server_gpus: tuple[str, ...]
    server_locations: tuple[str, ...]
    memory_gb: np.ndarray
    decode_ms_per_block: np.ndarray  # as given by the GPU type (unscaled)
    prefill_ms_per_token_per_block: np.ndarray
    prefill_ms_per_block: np.ndarray
    times_from_preset: np.ndarray  # bool: fitted on the reference model, to be scaled (docs/model.md §3.1)
    max_blocks: np.ndarray  # int; n_blocks where the GPU has no clamp
    roofline: np.ndarray  # bool: derive times from tflops / bandwidth for the model (docs/model.md §3.1)
    tflops: np.ndarray
    bandwidth_gb_per_ms: np.ndarray
    per_block_overhead_ms: np.ndarray
    inference_rps: np.ndarray  # NaN where unknown
    forward_rps: np.ndarray
    network_rps: np.ndarray
    client_names: tuple[str, ...]
    client_locations: tuple[str, ...]
    rtt_raw_client_ms: np.ndarray  # (clients, servers)
    rtt_raw_server_ms: ServerRtt  # servers × servers, kept per node (§11.2); NaN where unknown. A matrix is converted
    timing: TimingSpec
    input_tokens: int  # the workload's nominal l_in (mean for traces), used by placement
    output_tokens: int  # nominal l_out
    cache_tokens: int  # tokens one request's KV cache is sized for
    petals_join_order: tuple[int, ...] | None = None  # the scenario's explicit PETALS join order (server indices)
    # docs/model.md §17 — fidelity knobs, off by default.
    link_bandwidth_mbps: np.ndarray | None = None  # (clients, servers); inf: transfers not modelled
    petals_reserve: str = "cache_tokens"  # or "max_length": PETALS sessions reserve l_in + l_out tokens

    def __post_init__(self) -> None:
        if not isinstance(self.rtt_raw_server_ms, ServerRtt):  # a plain (servers × servers) matrix
            object.__setattr__(self, "rtt_raw_server_ms", ServerRtt.dense(self.rtt_raw_server_ms))

    @property
    def n_servers(self) -> int:
        return len(self.server_names)

    @property
    def n_clients(self) -> int:
        return len(self.client_names)

    @property
    def unknown_server_rtt_pairs(self) -> int:
        """Server pairs with no RTT (servers listed with ``rtt_ms`` to the clients only)."""
        return self.rtt_raw_server_ms.unknown_pairs()

    def assumptions(self) -> list[dict]:
        """Values the scenario did not state that some method fills in; every output lists them."""
        k = self.unknown_server_rtt_pairs
        if k == 0:
            return []
        pairs = self.n_servers * (self.n_servers - 1) // 2
        return [
            {
                "field": "timing.petals_unknown_rtt_ms",
                "value": float(self.timing.petals_unknown_rtt_ms),
                "reason": f"{k} of {pairs} server pairs have no RTT; PETALS' router (petals, petals-retry, "
                "opt-order, opt-num) assumes this RTT between them",
                "fix": "place the servers on network nodes (e.g. a matrix) to give every RTT",
            }
        ]
