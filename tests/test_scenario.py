"""Scenario files, presets, topologies and RTTs (docs/model.md §11, §12)."""

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import apply_overrides, builtin_names, load_scenario
from swarmplan.scenario.network import builtin_topology_path, haversine_km, network_from_edges, read_graphml, read_repetita
from swarmplan.scenario.realize import realize


def test_builtins_are_listed_and_load():
    assert {"paper-abvt", "paper-bellcanada", "paper-gtsce", "paper-clustered"} <= set(builtin_names())
    for name in builtin_names():
        load_scenario(name)


@pytest.mark.parametrize("name, servers, a100", [("paper-abvt", 9, 2), ("paper-bellcanada", 19, 4), ("paper-gtsce", 60, 12)])
def test_paper_draws_follow_the_paper(name, servers, a100):
    pm = perf_of(name, seed=3)
    gpus = pm.swarm.server_gpus
    assert len(gpus) == servers and gpus.count("a100-80gb") == a100
    # MIG first, A100 last, as the authors re-index.
    assert list(gpus) == sorted(gpus, key=lambda g: g != "mig-1g-10gb")
    assert len(set(pm.swarm.server_locations)) == servers
    assert pm.swarm.client_locations[0] not in pm.swarm.server_locations


def test_repetita_delay_rule_on_abvt():
    """REPETITA: ⌊1.66541·d_km + 5⌋ µs; Abvt's links span 0.100–13.800 ms; the coordinate-less node gets 2572 µs."""
    names, edges = read_graphml(builtin_topology_path("Abvt"))
    delays = [d for _, _, d in edges]
    assert (len(names), len(edges)) == (23, 31)
    assert min(delays) == 100 and max(delays) == 13800
    assert [d for u, v, d in edges if "None" in names[u] + names[v]] == [2572] * 3


def test_gtsce_delay_range_and_fill():
    names, edges = read_graphml(builtin_topology_path("GtsCe"))
    delays = [d for _, _, d in edges]
    assert len(names) == 149 and min(delays) == 5 and max(delays) == 1081
    assert 256 in delays


def test_haversine_known_distance():
    # New York (40.7128, -74.0060) to London (51.5074, -0.1278): about 5570 km.
    assert haversine_km(40.7128, -74.0060, 51.5074, -0.1278) == pytest.approx(5570, rel=0.01)


def test_rtt_is_twice_the_shortest_path(tmp_path):
    # A path a–b–c with delays 1000 and 2000 µs: RTT(a, c) = 2 × 3 ms = 6 ms.
    net = network_from_edges(["0_a", "1_b", "2_c"], [(0, 1, 1000), (1, 2, 2000)])
    assert net.rtt_raw_ms[0, 2] == pytest.approx(6.0)
    assert net.index("b", "x") == 1 and net.index("2", "x") == 2
    # The same graph written in REPETITA format reads back identically.
    f = tmp_path / "t.graph"
    f.write_text(
        "NODES 3\nlabel x y\n0_a 0 0\n1_b 0 0\n2_c 0 0\n\nEDGES 4\nlabel src dest weight bw delay\n"
        "edge_0 0 1 1 1000000 1000\nedge_1 1 0 1 1000000 1000\nedge_2 1 2 1 1000000 2000\nedge_3 2 1 1 1000000 2000\n"
    )
    names, edges = read_repetita(f)
    assert network_from_edges(names, edges).rtt_raw_ms == pytest.approx(net.rtt_raw_ms)


def test_explicit_rtts_and_matrix_and_csv(tmp_path):
    csv = tmp_path / "rtt.csv"
    csv.write_text("src,dst,rtt_ms\nclient,a,10\nclient,b,30\na,b,15\n")
    sc = {
        "model": {"preset": "bloom-176b"},
        "servers": [{"name": "a", "gpu": "a100-80gb", "node": "a"}, {"name": "b", "gpu": "a100-80gb", "node": "b"}],
        "clients": [{"name": "client", "node": "client"}],
        "network": {"rtt_csv": str(csv)},
    }
    pm = perf_of(sc)
    # client→b is 30 directly but 25 through a: shortest paths fill the RTT matrix.
    assert pm.rtt_raw_ms.tolist() == [[10.0, 25.0]]
    assert pm.rtt_ms.tolist() == [[110.0, 125.0]]
    assert pm.swarm.rtt_raw_server_ms[0, 1] == 15.0


def test_overrides_parse_values_and_index_lists():
    data = {"workload": {"rate_per_s": 0.5}, "servers": [{"gpu": "l4"}]}
    out = apply_overrides(data, ["workload.rate_per_s=0.1", "servers.0.gpu=a100-80gb", "network.topology=GtsCe"])
    assert out["workload"]["rate_per_s"] == 0.1 and out["servers"][0]["gpu"] == "a100-80gb"
    assert out["network"] == {"topology": "GtsCe"}
    assert data["workload"]["rate_per_s"] == 0.5, "the original is not modified"


def test_validation_errors_carry_file_positions(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nservers:\n  count: 3\n  gpu_fractions: {a100-80gb: 1.0}\nworkload:\n  rate_per_s: -2\n  colour: red\n")
    with pytest.raises(SwarmplanError) as err:
        load_scenario(str(f))
    text = str(err.value)
    assert f"{f}:6:3: workload.rate_per_s" in text
    assert f"{f}:7:3: workload.colour: unknown field" in text


def test_estimated_gpus_are_marked_and_scale_with_bandwidth():
    from swarmplan.scenario.presets import GPU_PRESETS

    assert not GPU_PRESETS["a100-80gb"]["estimate"] and GPU_PRESETS["h100-80gb"]["estimate"]
    # Decode is memory-bound: τ_H100 = τ_A100 × 2.039 / 3.35.
    assert GPU_PRESETS["h100-80gb"]["decode_ms_per_block"] == pytest.approx(3.2197 * 2.039 / 3.35, abs=1e-4)


def test_preset_times_scale_to_smaller_models():
    sc = explicit_scenario([{"preset": "a100-80gb"}], [5.0])
    sc["model"] = {"preset": "llama-2-7b"}
    pm = perf_of(sc)
    # Llama-2-7B fp16 block = 202,383,360 × 2 × 1.01 B = 0.4088 GB; decode scales by 0.4088 / 1.3234.
    assert pm.block_gb == pytest.approx(0.40881, abs=1e-5)
    assert pm.tau_ms[0] == pytest.approx(3.2197 * pm.block_gb / 1.323397667, rel=1e-6)


def test_same_seed_same_draw():
    sc, base = load_scenario("paper-gtsce")
    a = realize(sc, np.random.default_rng(7), base)
    b = realize(sc, np.random.default_rng(7), base)
    assert a.server_locations == b.server_locations and a.server_gpus == b.server_gpus


def test_ripe_atlas_rtts_follow_the_follow_up_formula():
    from swarmplan.scenario.network import load_ripe_atlas

    net = load_ripe_atlas("ripe-atlas-eu", None)
    assert len(net.names) == 320
    assert (np.diag(net.rtt_raw_ms) == 0).all() and np.allclose(net.rtt_raw_ms, net.rtt_raw_ms.T)
    # Independent recomputation for two anchors from the CSV rows.
    import csv
    from importlib import resources

    path = resources.files("swarmplan.scenario").joinpath("data").joinpath("rtt").joinpath("LearningDataset_RTT_RipeAtlasEU.csv")
    rows = list(csv.DictReader(path.open()))
    a, b = net.names[0].removeprefix("anchor"), net.names[1].removeprefix("anchor")
    vals = {x: [float(r[f"latency_m{k}"]) for r in rows if r["anchor_id"] == x for k in range(1, 5)] for x in (a, b)}
    pos = {x: next((float(r["latitude"]), float(r["longitude"])) for r in rows if r["anchor_id"] == x) for x in (a, b)}
    expected = 0.3 * np.median(vals[a]) + 0.3 * np.median(vals[b]) + 0.01 * haversine_km(*pos[a], *pos[b])
    assert net.rtt_raw_ms[0, 1] == pytest.approx(expected)


def test_roofline_times_match_the_follow_up_numbers():
    from swarmplan.perf.timing import roofline_times

    # BLOOM-176B (s_m 1.32 GB, 2.47e9 parameters ≈ 5 GFLOPs/token) on 120 TFLOPS, 1.02 GB/ms:
    # t^I = 0.0417 ms per input token, t^O = 1.294 ms per output token (Sun, He, Hou 2026).
    tau, slope, base = roofline_times(1.32, 2.5e9, 120.0, 1.02, 1.0)
    assert slope == pytest.approx(0.0417, abs=1e-4) and tau == pytest.approx(1.294, abs=1e-3) and base == 1.0


def test_trace_scenario_mirrors_the_follow_up():
    pm = perf_of("trace-azure-code", seed=1)
    sw = pm.swarm
    assert sw.model.name == "llama-2-7b" and pm.L == 32
    assert sorted(sw.server_gpus).count("mig-3g") == 3 and sorted(sw.server_gpus).count("mig-2g") == 6
    assert (sw.input_tokens, sw.output_tokens) == (2048, 28)  # trace means
    assert pm.kv_gb == pytest.approx(2 * 4096 * 2 * 4096 / 1e9)  # sized for the 4096-token context
    # Roofline: τ = s_m / bandwidth on a 2g.20gb slice.
    j = sw.server_gpus.index("mig-2g")
    assert pm.tau_ms[j] == pytest.approx(pm.block_gb / 0.51)
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.workload import draw_workload

    sc, base = load_scenario("trace-azure-code")
    wl = draw_workload(sc.workload, 1, np.random.default_rng(0), None, base)
    assert wl.n == 1000 and wl.arrival_ms[0] == 0.0 and (np.diff(wl.arrival_ms) >= 0).all()


def test_the_documented_example_scenario_is_valid(tmp_path):
    """docs/scenarios.md shows a full scenario; it must load and plan as written."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "scenarios.md").read_text()
    example = tmp_path / "example.yaml"
    example.write_text(re.search(r"```yaml\n(.*?)```", doc, re.S).group(1))
    pm = perf_of_file(example)
    assert pm.L == 80 and pm.n_servers == 9


def perf_of_file(path):
    sc, base = load_scenario(str(path))
    from swarmplan.perf.model import PerfModel

    return PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))
