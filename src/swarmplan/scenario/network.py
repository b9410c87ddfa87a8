"""RTT matrices from topologies, RTT CSVs or explicit matrices (docs/model.md §11).

A Topology-Zoo GraphML becomes link delays by REPETITA's rule (delay µs = ⌊1.66541·d_km + 5⌋, haversine,
R = 6371 km; a link touching a node without coordinates gets the rounded mean of the other delays), which
reproduces the BPRR simulator's ``.graph`` inputs exactly. RTT_raw(u, v) = 2 × shortest-path delay.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.files import finite_number, read_csv_rows, read_text

EARTH_RADIUS_KM = 6371.0
BUILTIN_TOPOLOGIES = ("Abvt", "AttMpls", "Bellcanada", "Cogentco", "GtsCe", "Interoute", "Kdl")


@dataclass(frozen=True)
class RttNetwork:
    """Nodes and the raw (no overhead) round-trip time between every pair, in ms."""

    names: tuple[str, ...]  # canonical name per node ("<id>_<label>" for topologies)
    aliases: dict[str, int]  # every accepted reference (id, label, canonical name) → index
    rtt_raw_ms: np.ndarray  # (n, n), symmetric, zero diagonal

    def index(self, ref: str, field: str) -> int:
        if ref in self.aliases:
            return self.aliases[ref]
        sample = ", ".join(list(self.names)[:6])
        raise SwarmplanError(field, f"unknown node {ref!r}", f"use a node id or label of the topology (e.g. {sample}, …)")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """docs/model.md §11 — great-circle distance, R = 6371 km (REPETITA's rule)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def read_graphml(path: Path | str, delay_us_per_km: float = 1.66541) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Parse a Topology-Zoo GraphML: node names ``<id>_<label>`` and undirected edges (u, v, delay µs)."""
    try:
        root = ET.fromstring(read_text(path, "network.topology", "GraphML file"))
    except ET.ParseError as exc:
        raise SwarmplanError("network.topology", f"cannot read GraphML {path}: {exc}", "give a valid .graphml file")
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    keys = {k.get("attr.name"): k.get("id") for k in root.findall("g:key", ns) if k.get("for") == "node"}
    graph = root.find("g:graph", ns)
    if graph is None:
        raise SwarmplanError("network.topology", f"{path} has no <graph>", "give a Topology-Zoo GraphML file")
    ids, names, coords = [], [], []
    for node in graph.findall("g:node", ns):
        data = {d.get("key"): (d.text or "") for d in node.findall("g:data", ns)}
        label = data.get(keys.get("label"), "None")
        lat, lon = data.get(keys.get("Latitude")), data.get(keys.get("Longitude"))
        ids.append(node.get("id"))
        names.append(f"{node.get('id')}_{label.replace(' ', '_')}")
        where = f"{path}: node {node.get('id')}"
        coords.append(
            (
                finite_number(lat, "network.topology", where, "Latitude"),
                finite_number(lon, "network.topology", where, "Longitude"),
            )
            if lat and lon
            else None
        )
    index = {nid: i for i, nid in enumerate(ids)}
    raw_edges: list[tuple[int, int, int | None]] = []
    for edge in graph.findall("g:edge", ns):
        ends = (edge.get("source"), edge.get("target"))
        if any(e not in index for e in ends):
            raise SwarmplanError(
                "network.topology",
                f"{path}: edge {ends[0]}–{ends[1]} names an unknown node",
                "give a GraphML whose edges join declared nodes",
            )
        u, v = index[ends[0]], index[ends[1]]
        if coords[u] is None or coords[v] is None:
            raw_edges.append((u, v, None))
        else:
            d_km = haversine_km(*coords[u], *coords[v])
            raw_edges.append((u, v, int(math.floor(delay_us_per_km * d_km + 5))))
    known = [d for _, _, d in raw_edges if d is not None]
    fill = _round_half_up(sum(known) / len(known)) if known else 1
    edges = [(u, v, fill if d is None else d) for u, v, d in raw_edges]
    return names, edges


def read_repetita(path: Path | str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Parse a REPETITA ``.graph`` file (NODES / EDGES sections, delays in µs)."""
    lines = read_text(path, "network.topology", "REPETITA .graph file").splitlines()
    try:
        n = int(lines[0].split()[1])
        names = [lines[2 + i].split()[0] for i in range(n)]
        e_at = next(i for i, ln in enumerate(lines) if ln.startswith("EDGES"))
        edges = []
        for ln in lines[e_at + 2 : e_at + 2 + int(lines[e_at].split()[1])]:
            _, s, t, _w, _bw, delay = ln.split()
            edges.append((int(s), int(t), int(delay)))
            if not (0 <= edges[-1][0] < n and 0 <= edges[-1][1] < n) or edges[-1][2] < 0:
                raise ValueError(f"edge {ln.strip()!r} names a node outside 0..{n - 1} or has a negative delay")
    except (IndexError, ValueError, StopIteration) as exc:
        raise SwarmplanError(
            "network.topology", f"{path} is not a REPETITA .graph file ({exc})", "check its NODES/EDGES sections"
        )
    return names, edges


def _aliases(names: list[str]) -> dict[str, int]:
    """Accept the canonical name, the bare id and (when unique) the bare label of each node."""
    out: dict[str, int] = {}
    labels: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        out[name] = i
        nid, _, label = name.partition("_")
        out.setdefault(nid, i)
        labels.setdefault(label, []).append(i)
        labels.setdefault(label.replace("_", " "), []).append(i)
    for label, idx in labels.items():
        if label and len(set(idx)) == 1:
            out.setdefault(label, idx[0])
    return out


def network_from_edges(names: list[str], edges: list[tuple[int, int, int]]) -> RttNetwork:
    """docs/model.md §11 — undirected delays (µs → ms), all-pairs shortest paths, RTT_raw = 2·dist."""
    n = len(names)
    u = np.array([e[0] for e in edges] + [e[1] for e in edges])
    v = np.array([e[1] for e in edges] + [e[0] for e in edges])
    d = np.array([e[2] for e in edges] * 2, dtype=float) / 1000.0
    # Parallel edges: keep the smallest delay (coo → csr would sum duplicates).
    best: dict[tuple[int, int], float] = {}
    for a, b, w in zip(u.tolist(), v.tolist(), d.tolist()):
        if a != b and w < best.get((a, b), math.inf):
            best[(a, b)] = w
    rows, cols = zip(*best.keys()) if best else ((), ())
    # A zero-length link still connects: store a tiny positive weight so the sparse graph keeps it.
    vals = [max(w, 1e-12) for w in best.values()]
    mat = coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    dist = shortest_path(mat, method="D", directed=True)
    if np.isinf(dist).any():
        raise SwarmplanError("network.topology", "the topology is not connected", "use a connected graph")
    dist[dist < 1e-9] = 0.0
    return RttNetwork(tuple(names), _aliases(names), 2.0 * dist)


def builtin_topology_path(name: str):
    return resources.files("swarmplan.scenario").joinpath("data").joinpath("topologies").joinpath(f"{name}.graphml")


def load_topology(ref: str, delay_us_per_km: float, base_dir: Path | None) -> RttNetwork:
    """A built-in topology name or a path to a ``.graphml`` / ``.graph`` file."""
    lookup = {n.lower(): n for n in BUILTIN_TOPOLOGIES}
    if ref.lower() in lookup:
        with resources.as_file(builtin_topology_path(lookup[ref.lower()])) as p:
            return network_from_edges(*read_graphml(p, delay_us_per_km))
    path = _resolve(ref, base_dir)
    if not path.exists():
        raise SwarmplanError(
            "network.topology",
            f"no built-in topology or file named {ref!r}",
            f"use one of {', '.join(BUILTIN_TOPOLOGIES)} or an existing .graphml/.graph path",
        )
    if path.suffix == ".graph":
        return network_from_edges(*read_repetita(path))
    return network_from_edges(*read_graphml(path, delay_us_per_km))


def load_rtt_csv(ref: str, base_dir: Path | None) -> RttNetwork:
    """A long-format CSV ``src,dst,rtt_ms``; missing pairs are filled by shortest paths over the given ones.

    A pair may be given in one direction or both; both must agree (RTTs are symmetric, as the matrix form)."""
    field = "network.rtt_csv"
    path = _resolve(ref, base_dir)
    if not path.exists():
        raise SwarmplanError(field, f"no file named {ref!r}", "give an existing CSV (relative to the scenario's folder)")
    rows = read_csv_rows(path, field, {"src", "dst", "rtt_ms"}, "give a CSV with a header row src,dst,rtt_ms")
    names: list[str] = []
    index: dict[str, int] = {}
    triples = []
    seen: dict[tuple[int, int], tuple[float, int]] = {}
    for k, row in enumerate(rows, start=2):
        for key in ("src", "dst"):
            if not row[key].strip():
                raise SwarmplanError(field, f"{path}:{k}: empty {key}", "name both nodes of every row")
            if row[key] not in index:
                index[row[key]] = len(names)
                names.append(row[key])
        rtt = finite_number(row["rtt_ms"], field, f"{path}:{k}", "rtt_ms")
        if rtt < 0:
            raise SwarmplanError(field, f"{path}:{k}: negative RTT {rtt:g} ms", "RTTs must be ≥ 0 ms")
        a, b = index[row["src"]], index[row["dst"]]
        other = seen.get((b, a))
        if other is not None and not math.isclose(other[0], rtt, rel_tol=1e-9, abs_tol=1e-9):
            raise SwarmplanError(
                field,
                f"{path}:{k}: RTT {row['src']}→{row['dst']} = {rtt:g} ms but line {other[1]} "
                f"gives {row['dst']}→{row['src']} = {other[0]:g} ms",
                "RTTs are symmetric: give one value per pair (or the same value both ways)",
            )
        seen.setdefault((a, b), (rtt, k))
        triples.append((a, b, rtt))
    return _network_from_rtts(names, triples, field)


def network_from_matrix(spec) -> RttNetwork:
    field = "network.matrix.rtt_ms"
    m = np.asarray(spec.rtt_ms, dtype=float)
    bad = np.argwhere(~np.isfinite(m))
    if bad.size:
        i, j = bad[0].tolist()
        raise SwarmplanError(f"{field}.{i}.{j}", f"RTT is {m[i, j]} (not a finite number)", "give a finite RTT in ms")
    neg = np.argwhere(m < 0)
    if neg.size:
        i, j = neg[0].tolist()
        raise SwarmplanError(f"{field}.{i}.{j}", f"negative RTT {m[i, j]:g}", "RTTs must be ≥ 0 ms")
    if not np.allclose(m, m.T):
        i, j = np.argwhere(~np.isclose(m, m.T))[0].tolist()
        raise SwarmplanError(
            field,
            f"the matrix is not symmetric: row {i} column {j} is {m[i, j]:g} but row {j} column {i} is {m[j, i]:g}",
            "give RTT(u,v) = RTT(v,u)",
        )
    if len(set(spec.nodes)) != len(spec.nodes):
        dup = sorted({n for n in spec.nodes if spec.nodes.count(n) > 1})
        raise SwarmplanError("network.matrix.nodes", f"node name(s) {', '.join(dup)} repeat", "name every node once")
    np.fill_diagonal(m, 0.0)
    return RttNetwork(tuple(spec.nodes), {n: i for i, n in enumerate(spec.nodes)}, m)


def _network_from_rtts(names, triples, field) -> RttNetwork:
    n = len(names)
    best: dict[tuple[int, int], float] = {}
    for a, b, rtt in triples:
        for key in ((a, b), (b, a)):
            best[key] = min(best.get(key, math.inf), max(rtt, 1e-12))
    rows, cols = zip(*best.keys())
    mat = coo_matrix((list(best.values()), (rows, cols)), shape=(n, n)).tocsr()
    dist = shortest_path(mat, method="D", directed=True)
    if np.isinf(dist).any():
        raise SwarmplanError(field, "some nodes have no RTT path between them", "add the missing pairs")
    dist[dist < 1e-9] = 0.0
    return RttNetwork(tuple(names), {nm: i for i, nm in enumerate(names)}, dist)


def _resolve(ref: str, base_dir: Path | None) -> Path:
    p = Path(ref).expanduser()
    if not p.is_absolute() and base_dir is not None and (base_dir / p).exists():
        return base_dir / p
    return p


BUILTIN_RTT_DATASETS = {"ripe-atlas-eu": "LearningDataset_RTT_RipeAtlasEU.csv"}


def load_ripe_atlas(ref: str, base_dir: Path | None, own_weight: float = 0.3, ms_per_km: float = 0.01) -> RttNetwork:
    """docs/model.md §11.1 — pairwise RTTs among RIPE Atlas anchors, synthesised as the follow-up does:
    RTT(i, j) = 0.3·median_i + 0.3·median_j + 0.01 ms/km × haversine(i, j), where median_i is the median of
    every RTT measured from the four monitors to anchor i."""
    if ref in BUILTIN_RTT_DATASETS:
        with resources.as_file(
            resources.files("swarmplan.scenario").joinpath("data").joinpath("rtt").joinpath(BUILTIN_RTT_DATASETS[ref])
        ) as p:
            path = Path(p)
            rows = _read_rows(path)
    else:
        path = _resolve(ref, base_dir)
        rows = _read_rows(path)
    samples: dict[str, list[float]] = {}
    where: dict[str, tuple[float, float]] = {}
    field = "network.ripe_atlas"
    for k, row in enumerate(rows, start=2):
        a = row["anchor_id"].strip()
        if not a.isdigit():
            raise SwarmplanError(field, f"{path}:{k}: anchor_id {a!r} is not a number", "fix that row")
        at = f"{path}:{k}"
        samples.setdefault(a, []).extend(finite_number(row[c], field, at, c) for c in row if c.startswith("latency_m") and row[c])
        where[a] = (
            finite_number(row["latitude"], field, at, "latitude"),
            finite_number(row["longitude"], field, at, "longitude"),
        )
    empty = [a for a, v in samples.items() if not v]
    if empty:
        raise SwarmplanError(field, f"{path}: anchor(s) {', '.join(empty)} have no latency sample", "drop them or add samples")
    names = sorted(samples, key=int)
    med = np.array([np.median(samples[a]) for a in names])
    lat = np.radians([where[a][0] for a in names])
    lon = np.radians([where[a][1] for a in names])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
    rtt = own_weight * (med[:, None] + med[None, :]) + ms_per_km * km
    np.fill_diagonal(rtt, 0.0)
    labels = [f"anchor{a}" for a in names]
    aliases = {lab: i for i, lab in enumerate(labels)} | {a: i for i, a in enumerate(names)}
    return RttNetwork(tuple(labels), aliases, rtt)


def _read_rows(path: Path) -> list[dict]:
    return read_csv_rows(
        path,
        "network.ripe_atlas",
        {"anchor_id", "latency_m1", "latitude", "longitude"},
        "give a CSV with anchor_id, latency_m1..m4, latitude, longitude",
    )


def netem_link_ms(rtt_ms, overhead_ms: float):
    """docs/model.md §17.1 — the delay the follow-up's testbed puts on a server's emulated link:
    d = RTT/2 + overhead (infra/network_emulator.py, one_way_delay_ms; 18 ms overhead). RTT 20 ms → 28 ms."""
    return np.asarray(rtt_ms, dtype=float) / 2.0 + overhead_ms


def netem_client_rtt_ms(rtt_ms, overhead_ms: float, delayed_directions: int):
    """docs/model.md §17.1 — the round trip a client host sees to a server behind a netem link: d per
    delayed direction. The testbed adds the netem qdisc as the *root* qdisc of the host-side veth, which
    delays only packets leaving the host (client → server), so one direction: RTT 20 ms → 28 ms; both
    directions (what the code's comment intends): 56 ms."""
    return delayed_directions * netem_link_ms(rtt_ms, overhead_ms)


def netem_server_rtt_ms(link_ms, delayed_directions: int):
    """docs/model.md §17.1 — server i ↔ server j in the testbed's star (every server's namespace hangs off the
    client host): i → host → j crosses link j's delayed direction, j → host → i link i's, so the round trip
    is d_i + d_j (one delayed direction) or 2(d_i + d_j) (both). ``link_ms``: d per server."""
    d = np.asarray(link_ms, dtype=float)
    out = delayed_directions * (d[:, None] + d[None, :])
    np.fill_diagonal(out, 0.0)
    return out
