"""Capacity search (docs/capacity.md §1): SLO parsing, the bracketing + bisection, and the bound against every
method's measured capacity on a tiny swarm; the CLI's JSON."""

import json

import numpy as np
import pytest
from conftest import explicit_scenario

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.capacity import (
    SearchOptions,
    UnitStream,
    backlog_growth,
    backlog_noise,
    capacity,
    parse_slo,
    search_method,
)
from swarmplan.scenario.models import Scenario


def test_parse_slo_forms_and_errors():
    s = parse_slo("per_token<=1.2x")
    assert (s.kind, s.value, s.relative) == ("per_token", 1.2, True)
    s = parse_slo("p95<=90")
    assert (s.kind, s.value, s.relative, s.quantile) == ("response", 90.0, False, 0.95)
    s = parse_slo("ttft<=3s")
    assert (s.kind, s.value, s.relative) == ("ttft", 3.0, False)
    assert parse_slo("p99.5<=2x").quantile == pytest.approx(0.995)
    for bad in ("fast", "per_token<=0.5x", "p100<=3", "ttft<=0", ""):
        with pytest.raises(SwarmplanError):
            parse_slo(bad)


def test_bisection_brackets_a_monotone_threshold():
    seen = []

    def evaluate(rate):  # the metric is the rate itself: the SLO (≤ 3.0) holds below 3 req/s
        seen.append(rate)
        return rate * 1000.0, {}

    opts = SearchOptions(rel_tol=0.01)
    res = search_method(evaluate, 3000.0, start=0.4, ceiling=100.0, opts=opts)
    assert res.lo <= 3.0 < res.hi and res.hi / res.lo - 1 <= 0.01
    assert all(t["holds"] == (t["rate_per_s"] <= 3.0) for t in res.trials)
    never = search_method(lambda r: (1e9, {}), 1.0, start=1.0, ceiling=10.0, opts=opts)
    assert never.lo == 0.0 and never.hi <= 1.0 / 2**9


def test_backlog_growth_by_hand():
    """docs/capacity.md §1.2: one FCFS server, arrivals every 1 ms at 0..99 ms. Service 1.25 ms (25 % overload):
    request i completes at 1.25 (i + 1); at t_w = 24.75 ms 25 arrived and 19 completed (N = 6), at 99 ms 100
    arrived and 79 completed (N = 21); 75 arrived in between, so the growth is 15/75 = 0.2 = ε/(1 + ε).
    Service 0.8 ms: one in the system at both instants, growth 0."""
    from types import SimpleNamespace

    arrival = np.arange(100.0)
    for service, want in ((1.25, 0.2), (0.8, 0.0)):
        done = service * (np.arange(100) + 1) if service > 1 else arrival + service
        result = SimpleNamespace(workload=SimpleNamespace(arrival_ms=arrival), completion_ms=done)
        assert backlog_growth(result, 0.25) == pytest.approx(want, abs=1e-12)
    # Noise scale: service 0.8 ms, one request in the system 80 % of the time over [24.75, 99] (the one that
    # arrived at 24 leaves at 24.8), so N̄ = (74 · 0.8 + 0.05) / 74.25 and the noise is 3 √(2 N̄) / 75.
    stable = SimpleNamespace(workload=SimpleNamespace(arrival_ms=arrival), completion_ms=arrival + 0.8)
    n_bar = (74 * 0.8 + 0.05) / 74.25
    assert backlog_noise(stable, 0.25) == pytest.approx(3 * np.sqrt(2 * n_bar) / 75, rel=1e-9)


def test_a_rate_that_does_not_keep_up_does_not_hold():
    """A metric within the SLO is not enough when the evaluation says the swarm does not keep up (a growing
    backlog, docs/capacity.md §1.2): the search brackets where it stops keeping up."""
    res = search_method(lambda r: (0.0, {"keeps_up": r <= 5.0}), 1.0, start=1.0, ceiling=100.0, opts=SearchOptions())
    assert res.lo <= 5.0 < res.hi and res.stopped_by() == "backlog"
    slo = search_method(lambda r: (r * 1000.0, {"keeps_up": True}), 5000.0, start=1.0, ceiling=100.0, opts=SearchOptions())
    assert slo.lo <= 5.0 < slo.hi and slo.stopped_by() == "slo"
    capped = search_method(lambda r: (0.0, {}), 1.0, start=1.0, ceiling=3.0, opts=SearchOptions())
    assert capped.lo == capped.hi == 3.0 and capped.stopped_by() == "ceiling"


def test_unit_stream_rescales_one_arrival_pattern():
    sc = Scenario.model_validate(explicit_scenario([{"memory_gb": 4.0, "decode_ms_per_block": 5.0}], [10.0], n_blocks=2))
    st = UnitStream.draw(sc, 1, seed=3, run=0, n=50, base_dir=None)
    a, b = st.at(1.0, 40), st.at(4.0, 20)
    assert np.allclose(b.arrival_ms, a.arrival_ms[:20] / 4.0)
    assert UnitStream.draw(sc, 1, 3, 0, 80, None).gaps[:50] == pytest.approx(st.gaps)


TINY = explicit_scenario(
    [
        {"memory_gb": 3.0, "decode_ms_per_block": 5.0},
        {"memory_gb": 2.6, "decode_ms_per_block": 7.0},
        {"memory_gb": 4.0, "decode_ms_per_block": 9.0},
    ],
    [10.0, 20.0, 30.0],
    n_blocks=4,
)


@pytest.mark.parametrize("slo", ["per_token<=1.5x", "p90<=2x"])
def test_no_method_beats_the_bound(slo):
    sc = Scenario.model_validate(TINY)
    opts = SearchOptions(rel_tol=0.05, horizon_services=20)
    res = capacity(sc, ["cg-bprr", "gbp-cr", "slo-pack", "helix", "parallax"], parse_slo(slo), 1, 0, opts)
    bound = res.bounds[0]["rate_per_s"]
    assert bound > 0
    for name in res.methods:
        lo = res.searches[name][0].lo
        # The bracket's resolution (rel_tol) is the only slack: a method's highest rate that held is below it.
        assert lo <= bound * (1 + opts.rel_tol), (name, lo, bound)
    assert res.capacity("slo-pack")[0] > 0


@pytest.mark.parametrize("slo", ["per_token<=1.5x", "p90<=2x"])
def test_length_aware_dispatch_stays_below_the_bound(slo, tmp_path):
    """SLO-Pack with its length-aware queue (docs/capacity.md §5.4; on by default with a length distribution)
    is still a placement + routing: the bound (here with 2 × 4 length boxes) holds on a tiny trace."""
    rng = np.random.default_rng(4)
    rows = [f"2023-11-16 18:{i // 60:02d}:{i % 60:02d}.0,{rng.integers(2, 12)},{rng.integers(1, 60)}" for i in range(300)]
    (tmp_path / "t.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
    spec = {**TINY, "workload": {**TINY["workload"], "lengths": "trace", "trace": "t.csv"}}
    sc = Scenario.model_validate(spec)
    opts = SearchOptions(rel_tol=0.05, horizon_services=20, length_bins=2, length_bins_out=4)
    res = capacity(sc, ["slo-pack"], parse_slo(slo), 1, 0, opts, tmp_path)
    lo, bound = res.searches["slo-pack"][0].lo, res.bounds[0]["rate_per_s"]
    assert 0 < lo <= bound * (1 + opts.rel_tol)


def test_cli_json_is_one_document(run_cli, tmp_path):
    path = tmp_path / "tiny.yaml"
    import yaml

    path.write_text(yaml.safe_dump(TINY))
    code, out, err = run_cli(
        "capacity", str(path), "--methods", "gbp-cr,slo-pack", "--slo", "per_token<=1.5x", "--tol", "0.1", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert {"slo", "upper_bound_per_s", "methods"} <= set(doc)
    for name in ("gbp-cr", "slo-pack"):
        m = doc["methods"][name]
        lo, hi = m["ci_per_s"]
        assert lo <= m["capacity_per_s"] <= hi
    code, out, err = run_cli("capacity", str(path), "--slo", "quick")
    assert code == 2 and "--slo" in err and out == ""


def test_cli_bins_out_is_validated(run_cli, tmp_path):
    path = tmp_path / "tiny.yaml"
    import yaml

    path.write_text(yaml.safe_dump(TINY))
    code, out, err = run_cli("capacity", str(path), "--bins-out", "0")
    assert code == 2 and "--bins-out" in err and out == ""


def test_cli_warns_when_a_method_measures_above_the_bound(run_cli, tmp_path, monkeypatch):
    """No swarm sustains more than the bound: a measurement above it means the horizon was too short to show
    an overload (docs/capacity.md §1.2), and the CLI says so on stderr, stdout staying one JSON document."""
    import yaml

    import swarmplan.experiments.capacity as cap
    from swarmplan.experiments.capacity import CapacityResult, MethodSearch

    def fake(sc, names, spec, runs, seed, opts, base, jobs=1):
        return CapacityResult(
            sc.name,
            spec,
            1,
            seed,
            opts,
            ["gbp-cr", "slo-pack"],
            [1000.0],
            [{"rate_per_s": 10.0, "lp_rate_per_s": 10.0, "certified": True}],
            {"gbp-cr": [MethodSearch(9.0, 9.3)], "slo-pack": [MethodSearch(10.3, 10.6)]},
        )

    monkeypatch.setattr(cap, "capacity", fake)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    code, out, err = run_cli("capacity", str(path), "--slo", "p95<=2x", "--json")
    assert code == 0, err
    assert json.loads(out)["methods"]["slo-pack"]["capacity_per_s"] == pytest.approx(10.3)
    assert "slo-pack measured 103.0%" in " ".join(err.split()) and "gbp-cr measured" not in err
