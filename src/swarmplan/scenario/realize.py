"""Turn a validated Scenario into a concrete Swarm: resolve presets, draw server locations, build RTTs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.limits import require_fits
from swarmplan.scenario.models import ClientDraw, Scenario, ServerDraw
from swarmplan.scenario.network import (
    RttNetwork,
    load_ripe_atlas,
    load_rtt_csv,
    load_topology,
    netem_client_rtt_ms,
    netem_link_ms,
    netem_server_rtt_ms,
    network_from_matrix,
)
from swarmplan.scenario.presets import GPU_PRESETS, MODEL_PRESETS
from swarmplan.scenario.server_rtt import ServerRtt
from swarmplan.scenario.swarm import ModelParams, Swarm
from swarmplan.scenario.workload import load_trace, nominal_lengths

_TIME_FIELDS = ("decode_ms_per_block", "prefill_ms_per_token_per_block", "prefill_ms_per_block")


def resolve_model(scenario: Scenario) -> ModelParams:
    spec = scenario.model
    base: dict = {}
    if spec.preset is not None:
        if spec.preset not in MODEL_PRESETS:
            raise SwarmplanError(
                "model.preset",
                f"unknown model preset {spec.preset!r}",
                f"use one of {', '.join(MODEL_PRESETS)} or give n_blocks, block_gb and kv_bytes_per_token_per_block",
            )
        base = dict(MODEL_PRESETS[spec.preset])
    given = {k: v for k, v in spec.model_dump().items() if v is not None and k != "preset"}
    merged = {**base, **given}
    if "n_blocks" not in merged:
        raise SwarmplanError("model.n_blocks", "missing", "give a preset or n_blocks")
    if "block_gb" not in merged and "params_per_block" not in merged:
        raise SwarmplanError("model.block_gb", "the block size is unknown", "give block_gb or params_per_block")
    if "kv_bytes_per_token_per_block" not in merged and "d_model" not in merged:
        raise SwarmplanError(
            "model.kv_bytes_per_token_per_block", "the KV-cache size is unknown", "give kv_bytes_per_token_per_block or d_model"
        )
    return ModelParams(
        name=spec.preset or "custom",
        n_blocks=merged["n_blocks"],
        params_per_block=merged.get("params_per_block"),
        d_model=merged.get("d_model"),
        kv_groups=merged.get("kv_groups", 1),
        quant=merged.get("quant", "none"),
        dtype=merged.get("dtype", "bfloat16"),
        block_gb_override=merged.get("block_gb"),
        kv_bytes_override=merged.get("kv_bytes_per_token_per_block"),
        attn_cache_tokens_override=merged.get("attn_cache_tokens"),
        activation_bytes_override=merged.get("activation_bytes_per_token"),
    )


def resolve_gpu(scenario: Scenario, name: str, field: str) -> tuple[dict, bool]:
    """GPU numbers for a type name and whether its times come from a preset fit (and so get scaled)."""
    if name in scenario.gpus:
        spec = scenario.gpus[name]
        base = {}
        if spec.preset is not None:
            if spec.preset not in GPU_PRESETS:
                raise SwarmplanError(
                    f"gpus.{name}.preset", f"unknown GPU preset {spec.preset!r}", f"use one of {', '.join(GPU_PRESETS)}"
                )
            base = dict(GPU_PRESETS[spec.preset])
        given = {k: v for k, v in spec.model_dump().items() if v is not None and k != "preset"}
        merged = {**base, **given}
        from_preset = spec.preset is not None and not any(f in given for f in _TIME_FIELDS)
    elif name in GPU_PRESETS:
        merged, from_preset = dict(GPU_PRESETS[name]), True
    else:
        known = sorted(set(GPU_PRESETS) | set(scenario.gpus))
        raise SwarmplanError(field, f"unknown GPU type {name!r}", f"use one of {', '.join(known)} or define it under gpus:")
    roofline = merged.get("timing") == "roofline"
    for need in ("memory_gb",) if roofline else ("memory_gb", "decode_ms_per_block"):
        if merged.get(need) is None:
            raise SwarmplanError(f"gpus.{name}.{need}", "missing", "give it, or start from a preset (e.g. preset: a100-80gb)")
    if roofline:
        for need in ("tflops", "bandwidth_gb_per_ms"):
            if merged.get(need) is None:
                raise SwarmplanError(f"gpus.{name}.{need}", "roofline timing needs it", "give the card's spec")
        from_preset = False
    merged.setdefault("prefill_ms_per_token_per_block", 0.0)
    merged.setdefault("prefill_ms_per_block", 0.0)
    return merged, from_preset


def _network(scenario: Scenario, base_dir: Path | None) -> RttNetwork | None:
    net = scenario.network
    if net.topology is not None:
        return load_topology(net.topology, net.delay_us_per_km, base_dir)
    if net.rtt_csv is not None:
        return load_rtt_csv(net.rtt_csv, base_dir)
    if net.matrix is not None:
        return network_from_matrix(net.matrix)
    if net.ripe_atlas is not None:
        return load_ripe_atlas(net.ripe_atlas, base_dir)
    return None


def _largest_remainder(count: int, fractions: dict[str, float]) -> dict[str, int]:
    """Split ``count`` servers by fractions; round(C·η) for two types (e.g. 9 × 0.2 → 2 A100)."""
    exact = {k: count * f for k, f in fractions.items()}
    floor = {k: int(np.floor(v)) for k, v in exact.items()}
    left = count - sum(floor.values())
    for k in sorted(exact, key=lambda k: -(exact[k] - floor[k]))[:left]:
        floor[k] += 1
    return floor


def _server_rtts(servers, client_nodes, network) -> tuple[np.ndarray, ServerRtt]:
    """(clients × servers) raw RTTs and the server-to-server RTTs kept per node (docs/model.md §11.2): explicit
    values as given, else the nodes' RTTs (servers sharing a node share its row and are 0 apart); a server
    without a node gets a row of its own, unknown (NaN) to every other server."""
    n, c = len(servers), len(client_nodes)
    node = np.array([-1 if s[2] is None else s[2] for s in servers], dtype=np.int64)
    on_node = node >= 0
    rtt_c = np.zeros((c, n))
    explicit = [j for j, s in enumerate(servers) if s[3] is not None]
    if explicit:
        rtt_c[:, explicit] = np.array([servers[j][3] for j in explicit], dtype=float).T
    if len(explicit) < n:
        for ci, cn in enumerate(client_nodes):
            if cn is None:
                raise SwarmplanError(
                    f"clients.{ci}.node", "servers sit on nodes but this client has none", "give the client a node"
                )
        cnodes = np.array(client_nodes, dtype=np.int64)
        rtt_c[:, on_node] = network.rtt_raw_ms[np.ix_(cnodes, node[on_node])]
    # Rows: the nodes servers sit on (each once), then one row per server without a node.
    used = np.unique(node[on_node])
    off = np.flatnonzero(~on_node)
    row = np.empty(n, dtype=np.int64)
    row[on_node] = np.searchsorted(used, node[on_node])
    row[off] = len(used) + np.arange(len(off))
    node_ms = np.full((len(used) + len(off), len(used) + len(off)), np.nan)
    if len(used):
        node_ms[: len(used), : len(used)] = network.rtt_raw_ms[np.ix_(used, used)]
    np.fill_diagonal(node_ms, 0.0)
    return rtt_c, ServerRtt(row, node_ms)


def _distinct(names, field: str, what: str) -> None:
    """Names must be unique; say which repeat and where."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise SwarmplanError(
                f"{field}.{i}.name",
                f"{what} name {name!r} repeats ({field}.{seen[name]} has it too)",
                f"give every {what} a distinct name",
            )
        seen[name] = i


def realize(scenario: Scenario, rng: np.random.Generator, base_dir: Path | None = None) -> Swarm:
    """One concrete swarm. Drawn servers/clients use ``rng``; explicit ones are taken as written."""
    model = resolve_model(scenario)
    for name in scenario.gpus:  # every declared type must be complete, used or not
        resolve_gpu(scenario, name, f"gpus.{name}")
    if scenario.workload.trace is not None:  # a named trace must exist even when only part of it is used
        load_trace(scenario.workload.trace, base_dir)
    network = _network(scenario, base_dir)
    gpu_cache: dict[str, tuple[dict, bool]] = {}

    def gpu(name: str, field: str):
        if name not in gpu_cache:
            gpu_cache[name] = resolve_gpu(scenario, name, field)
        return gpu_cache[name]

    # Clients.
    if isinstance(scenario.clients, ClientDraw):
        if network is None:
            raise SwarmplanError("clients", "drawn clients need a network", "set network.topology (or list clients explicitly)")
        n_nodes = len(network.names)
        if scenario.clients.count >= n_nodes:
            raise SwarmplanError(
                "clients.count",
                f"{scenario.clients.count} clients on {n_nodes} nodes leave no node for servers",
                "draw fewer clients or use a larger topology",
            )
        client_idx = [int(i) for i in rng.choice(n_nodes, size=scenario.clients.count, replace=False)]
        client_names = tuple(f"client{i + 1}" if scenario.clients.count > 1 else "client" for i in range(len(client_idx)))
        client_nodes: list[int | None] = client_idx
    else:
        client_names = tuple(c.name for c in scenario.clients)
        _distinct(client_names, "clients", "client")
        client_nodes = [
            network.index(c.node, f"clients.{i}.node") if (c.node is not None and network) else None
            for i, c in enumerate(scenario.clients)
        ]
        for i, c in enumerate(scenario.clients):
            if c.node is not None and network is None:
                raise SwarmplanError(f"clients.{i}.node", "a node needs a network", "set network.topology, rtt_csv or matrix")

    # Servers: (name, gpu type, node index or None, explicit client RTTs or None).
    servers: list[tuple[str, str, int | None, list[float] | None]] = []
    if isinstance(scenario.servers, ServerDraw):
        draw = scenario.servers
        if network is None:
            raise SwarmplanError("servers", "drawn servers need a network", "set network.topology or list servers explicitly")
        taken = {n for n in client_nodes if n is not None}
        free = [i for i in range(len(network.names)) if i not in taken]
        if draw.share_nodes:  # docs/model.md §11.2 — servers at the same PoP: nodes drawn with replacement
            if not free:
                raise SwarmplanError("servers.count", "no node is left for servers", "draw fewer clients")
            nodes = np.asarray(free)[rng.integers(len(free), size=draw.count)].tolist()
        elif draw.count > len(free):
            raise SwarmplanError(
                "servers.count",
                f"{draw.count} servers but only {len(free)} free nodes",
                f"draw at most {len(free)} servers, use a larger topology or set servers.share_nodes",
            )
        else:
            nodes = [int(free[i]) for i in rng.choice(len(free), size=draw.count, replace=False)]
        counts = _largest_remainder(draw.count, draw.gpu_fractions)
        types = [t for t, c in counts.items() for _ in range(c)]
        for t in types:
            gpu(t, f"servers.gpu_fractions.{t}")
        types = [types[i] for i in rng.permutation(len(types))]
        # Slower GPU types first (the authors re-index MIG first, A100 last); stable within a type.
        order = sorted(range(len(types)), key=lambda i: -gpu(types[i], "")[0]["decode_ms_per_block"])
        for rank, i in enumerate(order):
            servers.append((f"s{rank + 1:02d}", types[i], nodes[i], None))
    else:
        names = [s.name for s in scenario.servers]
        _distinct(names, "servers", "server")
        for i, s in enumerate(scenario.servers):
            gpu(s.gpu, f"servers.{i}.gpu")
            if s.node is not None:
                if network is None:
                    raise SwarmplanError(f"servers.{i}.node", "a node needs a network", "set network.topology, rtt_csv or matrix")
                servers.append((s.name, s.gpu, network.index(s.node, f"servers.{i}.node"), None))
            else:
                missing = [c for c in client_names if c not in s.rtt_ms]
                if missing:
                    raise SwarmplanError(
                        f"servers.{i}.rtt_ms", f"no RTT to client(s) {', '.join(missing)}", "give an RTT in ms to every client"
                    )
                servers.append((s.name, s.gpu, None, [s.rtt_ms[c] for c in client_names]))
    if not servers:
        raise SwarmplanError("servers", "no servers", "list or draw at least one server")

    n, c = len(servers), len(client_names)
    # Placement and routing keep a few per-block arrays per server (windows, coverage, MILP columns).
    require_fits(
        "model.n_blocks", model.n_blocks * n, 64, "block × server cells", "give the model's real number of transformer blocks"
    )
    rtt_c, rtt_s = _server_rtts(servers, client_nodes, network)
    server_names = tuple(s[0] for s in servers)
    rtt_c, rtt_s = _emulate(scenario, rtt_c, rtt_s)
    bandwidth = _link_bandwidth(scenario, c, server_names)

    specs = [gpu(t, "") for _, t, _, _ in servers]

    def col(key, default=np.nan):
        return np.array([default if s[0].get(key) is None else s[0][key] for s in specs], dtype=float)

    l_in, l_out, cache_tokens = nominal_lengths(scenario.workload, base_dir)
    join = _join_order(scenario.placement.petals_join_order, tuple(s[0] for s in servers))
    return Swarm(
        scenario=scenario.name,
        model=model,
        server_names=server_names,
        server_gpus=tuple(s[1] for s in servers),
        server_locations=tuple(network.names[s[2]] if s[2] is not None else "-" for s in servers),
        memory_gb=col("memory_gb"),
        decode_ms_per_block=col("decode_ms_per_block"),
        prefill_ms_per_token_per_block=col("prefill_ms_per_token_per_block", 0.0),
        prefill_ms_per_block=col("prefill_ms_per_block", 0.0),
        times_from_preset=np.array([s[1] for s in specs], dtype=bool),
        max_blocks=np.array(
            [model.n_blocks if s[0].get("max_blocks") is None else min(s[0]["max_blocks"], model.n_blocks) for s in specs],
            dtype=np.int64,
        ),
        roofline=np.array([s[0].get("timing") == "roofline" for s in specs], dtype=bool),
        tflops=col("tflops"),
        bandwidth_gb_per_ms=col("bandwidth_gb_per_ms"),
        per_block_overhead_ms=col("per_block_overhead_ms", 1.0),
        inference_rps=col("inference_rps"),
        forward_rps=col("forward_rps"),
        network_rps=col("network_rps"),
        client_names=client_names,
        client_locations=tuple(network.names[x] if (x is not None and network) else "-" for x in client_nodes),
        rtt_raw_client_ms=rtt_c,
        rtt_raw_server_ms=rtt_s,
        timing=scenario.timing,
        input_tokens=l_in,
        output_tokens=l_out,
        cache_tokens=cache_tokens,
        petals_join_order=join,
        link_bandwidth_mbps=bandwidth,
        petals_reserve=scenario.workload.petals_reserve,
    )


def _join_order(order: list[str] | None, names: tuple[str, ...]) -> tuple[int, ...] | None:
    """The scenario's PETALS join order as server indices; it must name every server exactly once."""
    if order is None:
        return None
    field = "placement.petals_join_order"
    unknown = [n for n in order if n not in names]
    if unknown:
        raise SwarmplanError(field, f"unknown server(s) {', '.join(map(repr, unknown))}", f"use names of {', '.join(names)}")
    repeated = sorted({n for n in order if order.count(n) > 1})
    if repeated:
        raise SwarmplanError(field, f"server(s) {', '.join(map(repr, repeated))} repeat", "name every server once")
    missing = [n for n in names if n not in order]
    if missing:
        raise SwarmplanError(field, f"server(s) {', '.join(map(repr, missing))} missing", "name every server once")
    return tuple(names.index(n) for n in order)


def _emulate(scenario: Scenario, rtt_c: np.ndarray, rtt_s: ServerRtt) -> tuple[np.ndarray, ServerRtt]:
    """docs/model.md §17.1 — with ``network.netem`` the RTTs become those of the testbed's netem star."""
    netem = scenario.network.netem
    if netem is None:
        return rtt_c, rtt_s
    if rtt_c.shape[0] != 1:
        raise SwarmplanError(
            "network.netem",
            f"the emulated star has one client host, not {rtt_c.shape[0]} clients",
            "use a single client with netem",
        )
    link = netem_link_ms(rtt_c[0], netem.overhead_ms)
    return (
        netem_client_rtt_ms(rtt_c, netem.overhead_ms, netem.delayed_directions),
        ServerRtt.dense(netem_server_rtt_ms(link, netem.delayed_directions)),
    )


def _link_bandwidth(scenario: Scenario, n_clients: int, server_names: tuple[str, ...]) -> np.ndarray | None:
    """docs/model.md §17.2 — client↔server link bandwidth (Mbit/s); None when no bandwidth is given."""
    net = scenario.network
    if net.bandwidth_mbps is None and not net.link_bandwidth_mbps:
        return None
    bw = np.full((n_clients, len(server_names)), np.inf if net.bandwidth_mbps is None else net.bandwidth_mbps)
    for name, mbps in net.link_bandwidth_mbps.items():
        if name not in server_names:
            raise SwarmplanError(
                f"network.link_bandwidth_mbps.{name}", f"no server named {name!r}", f"use one of {', '.join(server_names)}"
            )
        bw[:, server_names.index(name)] = mbps
    return bw
