"""Typed scenario description (pydantic v2). The YAML file maps one to one onto these models.

Units are in the field names (``_ms``, ``_gb``, ``_per_s``). Everything random (server locations, GPU
types, arrivals) is drawn later from an explicit seed (scenario.realize), so a Scenario is plain data.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args, get_origin

from annotated_types import Gt
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator, model_validator

MAX_COUNT = 2**53  # largest integer a float (and so JSON, YAML and numpy's float arrays) holds exactly
# Magnitudes a non-zero number may have. Products and quotients of a few such numbers (the formulas of
# docs/model.md multiply at most a handful) stay far inside float64's range, so a finite input never turns
# into inf or NaN downstream (1e308 ms of overhead, a rate of 1e-308/s). 1e12 ms is 30 years; 1e-9 is far
# below any rate, size or time a swarm has.
MAX_MAGNITUDE, MIN_MAGNITUDE = 1e12, 1e-9


class _Strict(BaseModel):
    """Every scenario model: unknown keys, NaN and ±inf are errors in every float field (``allow_inf_nan``);
    every float is at most 1e12 in magnitude (at least 1e-9 where it must be positive) and every integer at
    most 2⁵³, so no input
    overflows the arithmetic or the int64/float arrays it becomes. Counts that size arrays are checked again
    against the machine's memory where the arrays are made (scenario.limits)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_numbers(cls, value, info):
        field = cls.model_fields[info.field_name]
        _check_numbers(
            value,
            divisor=_positive(field.metadata)
            or any(_positive(get_args(a)[1:]) for a in get_args(field.annotation) if get_origin(a) is Annotated),
        )
        return value


def _positive(metadata) -> bool:
    """Declared strictly positive (PositiveFloat, gt=0), possibly inside ``X | None``."""
    return any(isinstance(m, Gt) and m.gt == 0 for m in metadata)


def _check_numbers(value, divisor: bool = False) -> None:
    """Integers ≤ 2⁵³; floats ≤ 1e12 in magnitude; a strictly positive float field (a rate, a size, a time
    per unit: what formulas divide by) also ≥ 1e-9, so 1/x stays finite."""
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > MAX_COUNT:
        raise ValueError(f"{value} is too large (at most 2**53 = {MAX_COUNT})")
    if isinstance(value, float) and abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{value:g} is too large (at most {MAX_MAGNITUDE:g} in magnitude)")
    if isinstance(value, float) and divisor and value < MIN_MAGNITUDE:
        raise ValueError(f"{value:g} is too small (a positive value of at least {MIN_MAGNITUDE:g})")
    if isinstance(value, dict):
        for v in value.values():
            _check_numbers(v)
    elif isinstance(value, list):
        for v in value:
            _check_numbers(v)


class ModelSpec(_Strict):
    """The LLM: a preset name, explicit architecture numbers, or a preset with overrides (docs/model.md §2)."""

    preset: str | None = Field(None, description="bloom-176b | llama-2-70b | llama-2-7b | llama-3-8b")
    n_blocks: PositiveInt | None = Field(None, description="number of transformer blocks L")
    params_per_block: PositiveInt | None = None
    d_model: PositiveInt | None = Field(None, description="hidden size")
    kv_groups: PositiveInt | None = Field(None, description="attention heads per KV head (1 = no GQA)")
    quant: Literal["nf4", "int8", "none"] | None = None
    dtype: Literal["bfloat16", "float16", "float32"] | None = None
    block_gb: PositiveFloat | None = Field(None, description="weights per block in GB (overrides the derived size)")
    kv_bytes_per_token_per_block: PositiveFloat | None = Field(None, description="K+V bytes per token per block")
    attn_cache_tokens: PositiveInt | None = Field(None, description="PETALS' fixed attention cache per block")
    activation_bytes_per_token: PositiveFloat | None = Field(
        None,
        description="bytes of one token's hidden state sent between client and server (default d_model × "
        "dtype bytes; docs/model.md §17.2)",
    )


class GpuSpec(_Strict):
    """A GPU type: a preset with overrides or explicit values (docs/model.md §3.1, §12)."""

    preset: str | None = None
    memory_gb: PositiveFloat | None = None
    decode_ms_per_block: PositiveFloat | None = Field(None, description="τ: decode time per block per token")
    prefill_ms_per_token_per_block: float | None = Field(None, ge=0)
    prefill_ms_per_block: float | None = Field(None, ge=0, description="intercept of the prefill fit")
    max_blocks: PositiveInt | None = None
    timing: Literal["fitted", "roofline"] | None = Field(
        None,
        description="fitted: the decode/prefill values as given; roofline: derive them for the model from "
        "tflops and bandwidth_gb_per_ms (docs/model.md §3.1)",
    )
    tflops: PositiveFloat | None = None
    bandwidth_gb_per_ms: PositiveFloat | None = None
    per_block_overhead_ms: float | None = Field(None, ge=0, description="roofline: fixed time per block per job")
    inference_rps: PositiveFloat | None = None
    forward_rps: PositiveFloat | None = None
    network_rps: PositiveFloat | None = None


class ServerDraw(_Strict):
    """Servers drawn at random topology nodes per Monte Carlo run, as the paper does."""

    count: PositiveInt
    gpu_fractions: dict[str, float] = Field(..., description="GPU type → fraction of servers (sums to 1)")
    share_nodes: bool = Field(
        False,
        description="several servers may sit at one node (servers at the same PoP): "
        "nodes are drawn with replacement, so count may exceed the nodes",
    )

    @model_validator(mode="after")
    def _fractions(self):
        total = sum(self.gpu_fractions.values())
        if not self.gpu_fractions or any(v < 0 for v in self.gpu_fractions.values()) or abs(total - 1) > 1e-6:
            raise ValueError(f"gpu_fractions must be non-negative and sum to 1 (they sum to {total:g})")
        return self


class ServerEntry(_Strict):
    name: str
    gpu: str
    node: str | None = Field(None, description="topology node (id or label)")
    rtt_ms: dict[str, NonNegativeFloat] | None = Field(None, description="measured RTT to each client (ms)")

    @model_validator(mode="after")
    def _where(self):
        if (self.node is None) == (self.rtt_ms is None):
            raise ValueError("give exactly one of 'node' (a topology node) or 'rtt_ms' (RTT to each client)")
        return self


class ClientDraw(_Strict):
    count: PositiveInt = 1


class ClientEntry(_Strict):
    name: str
    node: str | None = None


class MatrixSpec(_Strict):
    nodes: list[str]
    rtt_ms: list[list[float]]

    @model_validator(mode="after")
    def _square(self):
        n = len(self.nodes)
        if len(self.rtt_ms) != n or any(len(r) != n for r in self.rtt_ms):
            raise ValueError(f"rtt_ms must be a {n}×{n} matrix matching 'nodes'")
        return self


class NetemSpec(_Strict):
    """A WAN emulated as the follow-up's testbed does (docs/model.md §17.1): every server sits behind its own
    link from the client host, and ``tc netem`` delays that link by RTT/2 + overhead_ms, where RTT is the
    scenario's client-server RTT. Off (None) by default."""

    overhead_ms: NonNegativeFloat = Field(18.0, description="added to RTT/2 on every emulated link (testbed: 18 ms)")
    delayed_directions: Literal[1, 2] = Field(
        1,
        description="1: only client→server packets are delayed (netem on the host-side veth's root qdisc, as "
        "the testbed's code does); 2: both directions",
    )


class NetworkSpec(_Strict):
    """Where RTTs come from: a topology (GraphML or REPETITA .graph), an RTT CSV, or a matrix (docs/model.md §11)."""

    topology: str | None = Field(None, description="built-in name (Abvt, Bellcanada, GtsCe, …) or a .graphml/.graph path")
    rtt_csv: str | None = Field(None, description="CSV with columns src,dst,rtt_ms (symmetric)")
    matrix: MatrixSpec | None = None
    ripe_atlas: str | None = Field(None, description="RIPE Atlas anchor RTTs: built-in ripe-atlas-eu or a CSV path")
    delay_us_per_km: PositiveFloat = Field(1.66541, description="link delay rule of REPETITA (µs per km)")
    netem: NetemSpec | None = Field(None, description="emulate the follow-up testbed's netem links (off by default)")
    bandwidth_mbps: PositiveFloat | None = Field(
        None,
        description="client↔server link bandwidth for activations (Mbit/s); None: transfers are not "
        "modelled (docs/model.md §17.2)",
    )
    link_bandwidth_mbps: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="per-link bandwidth (Mbit/s) by server name: the link between the "
        "client(s) and that server; overrides bandwidth_mbps",
    )

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("topology", "rtt_csv", "matrix", "ripe_atlas") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one RTT source, not {' and '.join(given)}")
        return self


class TimingSpec(_Strict):
    """Timing knobs of the paper's online model (docs/model.md §3.2, §3.4, §4.5)."""

    overhead_ms: float = Field(100.0, ge=0, description="o: per-token serialisation/transfer overhead per hop")
    input_overhead_per_token_ms: float = Field(0.7049, ge=0)
    input_overhead_base_ms: float = Field(67.0, ge=0)
    initial_delay_ms: float = Field(70.0, ge=0, description="d_init: session set-up per request")
    fair_allocation_delay_ms: float = Field(0.0, ge=0, description="d_alloc of every method under the 'fair' profile")
    paper_allocation_delay_proposed_ms: float = Field(60_000.0, ge=0)
    paper_allocation_delay_petals_ms: float = Field(250_000.0, ge=0)
    backoff_first_ms: PositiveFloat = 1000.0
    backoff_max_ms: PositiveFloat = 60_000.0
    petals_overhead_ms: float = Field(18.0, ge=0)
    petals_cache_penalty_ms: float = Field(10_000.0, ge=0)
    petals_unknown_rtt_ms: PositiveFloat = Field(300.0, description="RTT PETALS assumes when none is known")
    petals_view_period_ms: PositiveFloat | None = Field(
        None,
        description="PETALS' client sees each server's free cache as last announced, every this many ms "
        "(120 s: run_server's update_period); None: the live state (docs/model.md §17.5)",
    )
    petals_refresh_ms: PositiveFloat | None = Field(
        None,
        description="PETALS' client refreshes its view (announcements, bans) every this many ms (60 s: "
        "ClientConfig.update_period); None: at once (docs/model.md §17.5)",
    )
    petals_ban_ms: PositiveFloat | None = Field(
        None,
        description="a server whose allocation failed is banned this long, doubled per consecutive failure "
        "(15 s: ClientConfig.ban_timeout), from the next refresh; None: no bans (§17.5)",
    )


class WorkloadSpec(_Strict):
    arrivals: Literal["poisson", "trace", "times"] = Field(
        "poisson",
        description="poisson: seeded Poisson(rate_per_s); trace: the trace's timestamps; times: the "
        "explicit arrival_times_s list or arrival_times_file",
    )
    rate_per_s: PositiveFloat = 0.5
    n_requests: PositiveInt = Field(100, description="requests per run (arrivals: times — default: every time given)")
    arrival_times_s: list[NonNegativeFloat] | None = Field(
        None, description="arrivals: times — arrival time of each request in seconds, non-decreasing"
    )
    arrival_times_file: str | None = Field(
        None,
        description="arrivals: times — a plain text file with one arrival time in seconds per line "
        "(non-decreasing; blank lines and # comments skipped)",
    )
    lengths: Literal["fixed", "trace"] = "fixed"
    input_tokens: PositiveInt = 20
    output_tokens: PositiveInt = 128
    trace: str | None = Field(None, description="built-in trace (azure-code, azure-conv) or an Azure-format CSV")
    cache_tokens: PositiveInt | None = Field(None, description="tokens the KV cache of one request is sized for")
    petals_reserve: Literal["cache_tokens", "max_length"] = Field(
        "cache_tokens",
        description="PETALS memory model: each session reserves cache_tokens per block (default), "
        "or its own declared max length l_in + l_out out of attn_cache_tokens per "
        "block, as PETALS does (docs/model.md §17.3)",
    )
    service: Literal["deterministic", "exponential"] = Field(
        "deterministic",
        description="exponential: each request's service time is drawn Exp(mean = its model time), "
        "the assumption of queueing bounds (docs/model.md §9.1)",
    )

    @model_validator(mode="after")
    def _trace_needed(self):
        if (self.arrivals == "trace" or self.lengths == "trace") and self.trace is None:
            raise ValueError("arrivals or lengths come from a trace, so 'trace' must name one")
        given = [k for k in ("arrival_times_s", "arrival_times_file") if getattr(self, k) is not None]
        if self.arrivals == "times" and len(given) != 1:
            raise ValueError("arrivals: times needs exactly one of arrival_times_s (a list) or arrival_times_file")
        if self.arrivals != "times" and given:
            raise ValueError(f"{given[0]} is only read with arrivals: times (set it, or drop {given[0]})")
        times = self.arrival_times_s
        if times is not None:
            if not times:
                raise ValueError("arrival_times_s is empty; give at least one arrival time")
            back = next((i for i in range(1, len(times)) if times[i] < times[i - 1]), None)
            if back is not None:
                raise ValueError(
                    f"arrival_times_s must not decrease: item {back} ({times[back]:g} s) comes before "
                    f"item {back - 1} ({times[back - 1]:g} s); sort the list"
                )
            if "n_requests" not in self.model_fields_set:
                self.n_requests = len(times)
            elif self.n_requests > len(times):
                raise ValueError(f"n_requests = {self.n_requests} but arrival_times_s has only {len(times)} times")
        return self


class PlacementSpec(_Strict):
    R: PositiveInt | None = Field(None, description="target concurrency R; default: the paper's rule (§6)")
    petals_balance_quality: float = Field(0.75, ge=0)
    petals_join_order: list[str] | None = Field(
        None,
        description="PETALS' join order: every server's name once (drawn servers are s01, s02, …); "
        "default: a random order drawn from the run's seed",
    )


class ChurnEvent(_Strict):
    """One explicit outage: ``server`` fails at ``fail_s`` and, unless ``return_s`` is omitted, returns then
    (seconds from the start of the run; docs/model.md §16)."""

    server: str = Field(..., description="server name")
    fail_s: NonNegativeFloat = Field(..., description="time the server fails (s)")
    return_s: NonNegativeFloat | None = Field(None, description="time it is back (s); omitted: it never returns")

    @model_validator(mode="after")
    def _order(self):
        if self.return_s is not None and self.return_s <= self.fail_s:
            raise ValueError(f"return_s ({self.return_s:g}) must be after fail_s ({self.fail_s:g})")
        return self


class ChurnProcess(_Strict):
    """A seeded failure/repair process per server: exponential up and down times (docs/model.md §16)."""

    mtbf_s: PositiveFloat = Field(..., description="mean time between failures of one server (s)")
    mean_downtime_s: PositiveFloat = Field(..., description="mean time a failed server stays down (s)")
    horizon_s: PositiveFloat | None = Field(None, description="draw outages until this time (default: the run's last arrival)")


class ChurnSpec(_Strict):
    """Server failures and returns (docs/model.md §16). Empty (the default) means no churn."""

    events: list[ChurnEvent] = Field(default_factory=list)
    process: ChurnProcess | None = None


class SplitDevice(_Strict):
    """A class of client devices that may run part of the model for their own requests (docs/split.md §2)."""

    name: str
    gpu: str = Field(
        ...,
        description="GPU type (a preset or a gpus: entry; CPUs as a roofline type) giving the "
        "device's per-block times and memory",
    )
    memory_gb: PositiveFloat | None = Field(None, description="memory the device gives to blocks (default: the type's)")
    uplink_mbit_per_s: float = Field(..., description="device → server bandwidth (Mbit/s)")
    downlink_mbit_per_s: float = Field(..., description="server → device bandwidth (Mbit/s)")
    rtt_ms: NonNegativeFloat = Field(0.0, description="round trip to the server (ms)")
    share: NonNegativeFloat = Field(..., description="fraction of the requests sent from this class")
    count: PositiveInt = Field(1, description="devices of this class in the planning window")
    budget_fraction: float = Field(
        1.0, gt=0, le=1, description="share of each device's time it may compute for its requests over the planning window"
    )


class SplitRequestType(_Strict):
    """A kind of request with its lengths, SLA and share of the traffic (docs/split.md §2)."""

    name: str
    input_tokens: PositiveInt
    output_tokens: PositiveInt
    share: NonNegativeFloat
    sla_response_s: PositiveFloat | None = Field(None, description="response time bound")
    sla_ttft_s: PositiveFloat | None = Field(None, description="time-to-first-token bound")
    sla_per_token_ms: PositiveFloat | None = Field(None, description="bound on each decode step")

    @model_validator(mode="after")
    def _some_sla(self):
        if self.sla_response_s is None and self.sla_ttft_s is None and self.sla_per_token_ms is None:
            raise ValueError("give at least one of sla_response_s, sla_ttft_s, sla_per_token_ms")
        return self


class SplitSpec(_Strict):
    """Client/server split (docs/split.md): device classes, request types, the server that serves them."""

    devices: list[SplitDevice]
    request_types: list[SplitRequestType]
    server: str | None = Field(None, description="server that runs the server side (default: the first)")
    client_suffix: bool = Field(True, description="a client may also run the last blocks (prefix + suffix splits)")
    server_decode_batch: PositiveInt | None = Field(
        None, description="decode streams the server runs at single-stream speed (default: roofline balance, docs/split.md §1.3)"
    )
    budget_resolution: PositiveInt = Field(1000, description="units of a device's budget in the knapsack DP")

    @model_validator(mode="after")
    def _shares(self):
        for what, items in (("devices", self.devices), ("request_types", self.request_types)):
            if not items:
                raise ValueError(f"{what} must not be empty")
            total = sum(x.share for x in items)
            if abs(total - 1) > 1e-6:
                raise ValueError(f"{what} shares must sum to 1 (they sum to {total:g})")
            names = [x.name for x in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names repeat")
        return self


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    model: ModelSpec = ModelSpec(preset="bloom-176b")
    gpus: dict[str, GpuSpec] = Field(default_factory=dict)
    servers: ServerDraw | list[ServerEntry]
    clients: ClientDraw | list[ClientEntry] = ClientDraw()
    network: NetworkSpec = NetworkSpec()
    timing: TimingSpec = TimingSpec()
    workload: WorkloadSpec = WorkloadSpec()
    placement: PlacementSpec = PlacementSpec()
    churn: ChurnSpec = ChurnSpec()
    split: SplitSpec | None = Field(None, description="client/server split (docs/split.md); absent: no split")
