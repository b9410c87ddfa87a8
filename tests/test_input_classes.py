"""Classes of bad input, each closed in one place and tested with generated input (hypothesis):
non-finite numbers, over-large counts, unreadable or mis-shaped files, repeated names."""

from __future__ import annotations

import math
import types
from typing import Annotated, Union, get_args, get_origin

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import field_path, load_scenario
from swarmplan.scenario.models import MAX_COUNT, Scenario, WorkloadSpec
from swarmplan.scenario.network import load_rtt_csv
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import (
    _read_times_file,
    _read_trace_file,
    draw_workload,
    load_arrival_times,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _paths(tp, path, leaf):
    """Dotted paths (list index 0, dict key 'k') to every ``leaf``-typed value inside type ``tp``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is leaf:
        yield path
    elif origin is Annotated:
        yield from _paths(args[0], path, leaf)
    elif origin in (Union, types.UnionType):
        for a in args:
            yield from _paths(a, path, leaf)
    elif origin is list:
        yield from _paths(args[0], path + (0,), leaf)
    elif origin is dict:
        yield from _paths(args[1], path + ("k",), leaf)
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            yield from _paths(f.annotation, path + (name,), leaf)


FLOAT_PATHS = sorted(set(_paths(Scenario, (), float)), key=str)
INT_PATHS = sorted(set(_paths(Scenario, (), int)), key=str)


def _put(path, value) -> dict:
    """A scenario dict holding ``value`` at ``path`` (the rest may be invalid; only that field's error is checked)."""
    data: dict = {"servers": {"count": 1, "gpu_fractions": {"a100-80gb": 1.0}}}
    node = data
    for key, nxt in zip(path, path[1:] + (None,)):
        if nxt is None:
            if isinstance(node, list):
                node.append(value)
            else:
                node[key] = value
            break
        child = [] if isinstance(nxt, int) else {}
        if isinstance(node, list):
            node.append(child)
        else:
            node[key] = child if not isinstance(node.get(key), type(child)) else node[key]
            child = node[key]
        node = child
    return data


def _error_locs(data) -> dict[tuple, set[str]]:
    try:
        Scenario.model_validate(data)
    except ValidationError as exc:
        out: dict[tuple, set[str]] = {}
        for e in exc.errors():
            loc = field_path(e["loc"])
            out.setdefault(loc, set()).add(e["type"])
        return out
    return {}


def test_the_walk_finds_the_known_float_and_int_fields():
    assert ("timing", "overhead_ms") in FLOAT_PATHS
    assert ("servers", "gpu_fractions", "k") in FLOAT_PATHS
    assert ("network", "matrix", "rtt_ms", 0, 0) in FLOAT_PATHS
    assert ("workload", "arrival_times_s", 0) in FLOAT_PATHS
    assert ("workload", "n_requests") in INT_PATHS and ("model", "n_blocks") in INT_PATHS


@FAST
@given(path=st.sampled_from(FLOAT_PATHS), bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_every_float_field_rejects_non_finite_numbers(path, bad):
    assert "finite_number" in _error_locs(_put(path, bad)).get(path, set()), path


def _models_in(tp) -> list[type]:
    origin, args = get_origin(tp), get_args(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in args for m in _models_in(a)] if origin is not None else []


def _positive_paths():
    """Paths of fields declared strictly positive (PositiveFloat): the ones formulas divide by."""
    out = []
    for path in FLOAT_PATHS:
        models, ok = [Scenario], False
        for part in path:
            if not isinstance(part, str) or part == "k":  # a list item or dict value: the leaf's own type decides
                ok = False
                continue
            f = next(m.model_fields[part] for m in models if part in m.model_fields)
            inner = [m for a in get_args(f.annotation) if get_origin(a) is Annotated for m in get_args(a)[1:]]
            ok = any(getattr(m, "gt", None) == 0 for m in [*f.metadata, *inner])
            models = _models_in(f.annotation) or models
        if ok:
            out.append(path)
    return out


POSITIVE_PATHS = _positive_paths()


@FAST
@given(path=st.sampled_from(POSITIVE_PATHS), tiny=st.floats(5e-324, 1e-9, exclude_max=True))
def test_positive_fields_reject_values_whose_inverse_overflows(path, tiny):
    assert _error_locs(_put(path, tiny)).get(path), (path, tiny)


def test_positive_paths_are_found():
    assert ("workload", "rate_per_s") in POSITIVE_PATHS and ("timing", "overhead_ms") not in POSITIVE_PATHS
    assert ("gpus", "k", "memory_gb") in POSITIVE_PATHS and ("servers", "gpu_fractions", "k") not in POSITIVE_PATHS


@FAST
@given(
    path=st.sampled_from(FLOAT_PATHS),
    bad=st.one_of(st.floats(1e12, 1e308, exclude_min=True), st.floats(-1e308, -1e12, exclude_max=True)),
)
def test_every_float_field_rejects_magnitudes_that_overflow_downstream(path, bad):
    # Reported at the field that holds the number (a dict or matrix field names the field, the message the value).
    locs = _error_locs(_put(path, bad))
    assert any(path[: len(loc)] == loc for loc in locs), (path, bad, locs)  # out of range, or below a field minimum


@FAST
@given(path=st.sampled_from(INT_PATHS), big=st.integers(MAX_COUNT + 1, 2**80))
def test_every_integer_field_is_bounded(path, big):
    assert _error_locs(_put(path, big)).get(path), path


@FAST
@given(
    key=st.sampled_from(
        ["workload.rate_per_s", "timing.overhead_ms", "gpus.a100-80gb.memory_gb", "servers.gpu_fractions.a100-80gb"]
    ),
    bad=st.sampled_from([".nan", ".inf", "-.inf", ".NaN", ".Inf"]),
)
def test_non_finite_overrides_are_one_error_naming_the_field(key, bad):
    with pytest.raises(SwarmplanError) as err:
        load_scenario("paper-abvt", [f"{key}={bad}"])
    assert f"--set: {key}: Input should be a finite number" in str(err.value)
    assert "\n" not in str(err.value)  # the union branch the user did not write adds no noise


def test_request_count_beyond_memory_says_so():
    sc, base = load_scenario("paper-abvt", ["workload.n_requests=1000000000000000"])
    with pytest.raises(SwarmplanError, match=r"workload\.n_requests: .*GiB of memory; this machine has"):
        draw_workload(sc.workload, 1, np.random.default_rng(0), None, base)


def test_block_count_beyond_memory_says_so():
    sc, base = load_scenario(
        "paper-abvt",
        ["model.n_blocks=1000000000000000", "model.preset=null", "model.block_gb=1e-9", "model.kv_bytes_per_token_per_block=1"],
    )
    with pytest.raises(SwarmplanError, match=r"model\.n_blocks: .*available"):
        realize(sc, np.random.default_rng(0), base)


def test_huge_output_tokens_names_the_field():
    with pytest.raises(SwarmplanError, match=r"^workload\.output_tokens: one request's KV cache for 100,000,020 tokens"):
        perf_of("paper-abvt", overrides=["workload.output_tokens=100000000"])


@FAST
@given(names=st.lists(st.sampled_from(["a", "b", "c", "[x]"]), min_size=2, max_size=5).filter(lambda n: len(set(n)) < len(n)))
def test_repeated_server_names_say_which(names):
    data = explicit_scenario([{"memory_gb": 80, "decode_ms_per_block": 5}] * len(names), [10.0] * len(names))
    for entry, name in zip(data["servers"], names):
        entry["name"] = name
    first_dup = next(n for i, n in enumerate(names) if n in names[:i])
    with pytest.raises(SwarmplanError) as err:
        realize(Scenario.model_validate(data), np.random.default_rng(0))
    assert f"server name {first_dup!r} repeats" in str(err.value)


# ---- files: encoding and shape before use -------------------------------------------------------------------


@FAST
@given(blob=st.binary(min_size=1, max_size=200).filter(lambda b: b"\x00" in b or not _utf8(b)))
def test_binary_or_non_utf8_scenario_file_is_one_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("sc") / "s.yaml"
    path.write_bytes(blob)
    with pytest.raises(SwarmplanError, match=r"^scenario: .*(binary file|not UTF-8)"):
        load_scenario(str(path))


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_a_folder_as_scenario_is_one_error(tmp_path):
    with pytest.raises(SwarmplanError, match="is a folder"):
        load_scenario(str(tmp_path))


@FAST
@given(a=st.floats(0, 500), b=st.floats(0, 500))
def test_asymmetric_rtt_csv_is_rejected(tmp_path_factory, a, b):
    path = tmp_path_factory.mktemp("net") / "rtt.csv"
    path.write_text(f"src,dst,rtt_ms\nx,y,{a!r}\ny,z,7\ny,x,{b!r}\n")
    if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
        net = load_rtt_csv(str(path), None)
        assert net.rtt_raw_ms[0, 1] == pytest.approx(max(a, 1e-12) if a > 1e-9 else 0.0)
    else:
        with pytest.raises(SwarmplanError, match=r"rtt\.csv:4: RTT y→x .* line 2 gives x→y"):
            load_rtt_csv(str(path), None)


@pytest.mark.parametrize(
    "text,match",
    [
        ("src,dst,rtt_ms\nx,y,nan\n", "rtt_ms is nan"),
        ("src,dst,rtt_ms\nx,y,inf\n", "rtt_ms is inf"),
        ("src,dst,rtt_ms\nx,y\n", "fewer fields than the header"),
        ("src,dst\nx,y\n", "lacks the column"),
        ("src,dst,rtt_ms\nx,y,fast\n", "is not a number"),
    ],
)
def test_rtt_csv_shape_and_values(tmp_path, text, match):
    path = tmp_path / "rtt.csv"
    path.write_text(text)
    with pytest.raises(SwarmplanError, match=match):
        load_rtt_csv(str(path), None)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_in_a_matrix_is_reported_as_nan_not_asymmetry(bad):
    data = {
        "servers": [{"name": "s", "gpu": "a100-80gb", "node": "a"}],
        "clients": [{"name": "c", "node": "b"}],
        "network": {"matrix": {"nodes": ["a", "b"], "rtt_ms": [[0, float(bad)], [float(bad), 0]]}},
    }
    locs = _error_locs(data)
    assert locs[("network", "matrix", "rtt_ms", 0, 1)] == {"finite_number"}
    from swarmplan.scenario.network import network_from_matrix

    spec = type("M", (), {"nodes": ["a", "b"], "rtt_ms": [[0, float(bad)], [float(bad), 0]]})
    with pytest.raises(SwarmplanError, match=r"network\.matrix\.rtt_ms\.0\.1: RTT is (nan|inf) \(not a finite number\)"):
        network_from_matrix(spec)


@FAST
@given(times=st.lists(st.integers(0, 10_000), min_size=2, max_size=12).filter(lambda t: t != sorted(t)))
def test_unsorted_trace_timestamps_are_rejected(tmp_path_factory, times):
    path = tmp_path_factory.mktemp("tr") / "trace.csv"
    rows = "".join(f"2023-11-16 18:{t // 3600 % 60:02d}:{t // 60 % 60:02d}.{t % 60:02d}0000,10,5\n" for t in times)
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows)
    first_back = next(i for i in range(1, len(times)) if times[i] < times[i - 1])
    with pytest.raises(SwarmplanError, match=rf"trace\.csv:{first_back + 2}: TIMESTAMP .* earlier"):
        _read_trace_file(str(path))


@FAST
@given(times=st.lists(st.floats(0, 1e5), min_size=1, max_size=20))
def test_arrival_times_file_sorted_or_named(tmp_path_factory, times):
    path = tmp_path_factory.mktemp("arr") / "times.txt"
    path.write_text("# arrival times (s)\n" + "".join(f"{t!r}\n" for t in times))
    if times == sorted(times):
        assert load_arrival_times(str(path)).tolist() == times
    else:
        k = next(i for i in range(1, len(times)) if times[i] < times[i - 1])
        with pytest.raises(SwarmplanError, match=rf"times\.txt:{k + 2}: arrival time .* earlier"):
            _read_times_file(str(path))


def test_explicit_arrival_list_is_the_workload():
    spec = WorkloadSpec(arrivals="times", arrival_times_s=[0.0, 0.5, 0.5, 3.25])
    assert spec.n_requests == 4  # every time, unless n_requests says fewer
    wl = draw_workload(spec, 1, np.random.default_rng(0))
    assert wl.arrival_ms.tolist() == [0.0, 500.0, 500.0, 3250.0]
    with pytest.raises(ValidationError, match="must not decrease: item 2"):
        WorkloadSpec(arrivals="times", arrival_times_s=[0.0, 2.0, 1.0])
    with pytest.raises(ValidationError, match="only read with arrivals: times"):
        WorkloadSpec(arrival_times_s=[0.0])


def test_arrival_times_file_sets_the_request_count(tmp_path):
    (tmp_path / "t.txt").write_text("0\n1.5\n\n2  # third\n")
    (tmp_path / "s.yaml").write_text(
        "servers: {count: 3, gpu_fractions: {a100-80gb: 1}}\nnetwork: {topology: Abvt}\n"
        "workload: {arrivals: times, arrival_times_file: t.txt}\n"
    )
    sc, base = load_scenario(str(tmp_path / "s.yaml"))
    assert sc.workload.n_requests == 3
    wl = draw_workload(sc.workload, 1, np.random.default_rng(0), None, base)
    assert wl.arrival_ms.tolist() == [0.0, 1500.0, 2000.0]
    with pytest.raises(SwarmplanError, match="holds only 3 arrival times"):
        load_scenario(str(tmp_path / "s.yaml"), ["workload.n_requests=4"])


# ---- an unstated server-to-server RTT is an assumption every output lists -----------------------------------


def test_servers_listed_by_client_rtt_carry_the_assumed_server_rtt():
    pm = perf_of(explicit_scenario([{"memory_gb": 80, "decode_ms_per_block": 5}] * 3, [10.0, 20.0, 30.0]))
    (a,) = pm.swarm.assumptions()
    assert a["field"] == "timing.petals_unknown_rtt_ms" and a["value"] == 300.0
    assert a["reason"].startswith("3 of 3 server pairs have no RTT")
    assert perf_of("paper-abvt").swarm.assumptions() == []
