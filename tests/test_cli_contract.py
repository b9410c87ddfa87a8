"""The CLI's contract: --json is exactly one JSON document on stdout (file descriptor 1, so C libraries such as
HiGHS count too) for every command and method; every bad input is one line on stderr and exit 2; output
paths are checked before work; results record what is needed to re-run them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmplan.methods.registry import METHODS
from swarmplan.placement.registry import PLACEMENTS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SWARM = str(EXAMPLES / "my-swarm.yaml")
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def cli(capfd, monkeypatch):
    """Run ``swarmplan`` in-process; stdout and stderr captured at the file-descriptor level."""
    from swarmplan.cli.main import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["swarmplan", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capfd.readouterr()
        return code, out, err

    return run


def one_error_line(code, out, err, starts: str) -> None:
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), err


MILP_FAST = ("--time-limit", "2")


@pytest.mark.parametrize("method", list(dict.fromkeys([*PLACEMENTS, *METHODS])))
def test_plan_json_is_one_document_for_every_method(cli, method):
    code, out, err = cli("plan", SWARM, "--method", method, "--json", *MILP_FAST)
    assert code == 0, err
    doc = json.loads(out)  # the whole of stdout: the HiGHS banner (quality LP, MILP) went to stderr
    assert doc["run"]["options"]["method"] == method
    if doc["R"] is None:  # PETALS' placements and GBP-CR need no R
        assert doc["R_rule"] is None
    else:  # R came from the paper's rule: its inputs T1 and R_max are in the document
        rule = doc["R_rule"]
        assert rule["rule"] == "paper §6" and rule["T1_s"] > 0 and rule["R_max"] >= doc["R"]
    assert doc["assumptions"] == []  # every RTT of this swarm is given


@pytest.mark.parametrize("method", list(METHODS))
def test_simulate_json_is_one_document_for_every_method(cli, method):
    code, out, err = cli("simulate", SWARM, "--method", method, "--json", "--requests", 6, "--milp-time-limit", 2)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == method and doc["summary"]["requests"] == 6


def test_schema_and_version(cli):
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out)["title"] == "Scenario"
    import swarmplan

    assert cli("--version")[:2] == (0, f"swarmplan {swarmplan.__version__}\n")


def test_plan_json_reports_the_R_rule_inputs(cli):
    from swarmplan.cli.common import seed_streams
    from swarmplan.perf.model import PerfModel
    from swarmplan.placement.target import paper_target
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize

    code, out, err = cli("plan", "paper-abvt", "--json", "--no-quality")
    doc = json.loads(out)
    sc, base = load_scenario("paper-abvt")
    tr = paper_target(PerfModel.from_swarm(realize(sc, seed_streams(0)[0], base)), 0.5)
    rule = doc["R_rule"]
    assert (rule["T1_s"], rule["R_max"], doc["R"]) == (tr.single_request_ms / 1000, tr.R_max, tr.R)
    code, out, err = cli("plan", "paper-abvt", "--json", "--no-quality", "--R", 7)
    doc = json.loads(out)
    assert (doc["R_rule"], doc["R"]) == (None, 7)


# ---- bad options: generated values, one line each ---------------------------------------------------------

BAD_OPTIONS = st.one_of(
    st.tuples(st.just("--seed"), st.integers(max_value=-1).map(str)),
    st.tuples(st.just("--time-limit"), st.one_of(st.floats(max_value=0).map(repr), st.sampled_from(["nan", "inf"]))),
    st.tuples(
        st.just("--gap"), st.one_of(st.floats(max_value=-1e-12, allow_infinity=False).map(repr), st.sampled_from(["nan", "-inf"]))
    ),
    st.tuples(st.just("--threads"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--R"), st.integers(max_value=0).map(str)),
    st.tuples(st.just("--c"), st.integers(max_value=0).map(str)),
)


@FAST
@given(bad=BAD_OPTIONS)
def test_bad_plan_options_are_one_line(cli, bad):
    option, value = bad
    one_error_line(*cli("plan", SWARM, f"{option}={value}"), starts=option)


@FAST
@given(
    command=st.sampled_from(["simulate", "compare"]),
    bad=st.one_of(
        st.tuples(st.just("--seed"), st.integers(max_value=-1).map(str)),
        st.tuples(st.just("--milp-time-limit"), st.sampled_from(["0", "-1", "nan", "inf"])),
        st.tuples(st.just("--requests"), st.integers(max_value=0).map(str)),
        st.tuples(st.just("--requests"), st.text(alphabet="abc[]/", min_size=1, max_size=5)),
    ),
)
def test_bad_simulate_and_compare_options_are_one_line(cli, command, bad):
    option, value = bad
    code, out, err = cli(command, SWARM, f"{option}={value}")
    one_error_line(code, out, err, starts="")
    assert option in err


def test_jobs_are_clamped_to_the_cpus_with_a_note(cli):
    cpus = len(os.sched_getaffinity(0))
    code, out, err = cli("compare", SWARM, "--runs", 1, "--requests", 4, "--methods", "petals", "--jobs", 5000)
    assert code == 0, err
    assert "note: --jobs: using 1 workers, not 5000" in err  # one run: one worker is all that can work
    code, out, err = cli("plan", SWARM, "--method", "cg-bp", "--threads", 5000, "--no-quality", "--json")
    assert code == 0 and f"using {cpus} workers, not 5000: there are only {cpus} CPUs" in err


# ---- user text is printed as written ----------------------------------------------------------------------

NAMES = st.text(alphabet="ab[]/:=#*", min_size=1, max_size=8).filter(lambda s: s.strip() == s and s[0] not in "#*[")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(server=NAMES, gpu=NAMES)
def test_rich_markup_in_names_prints_literally(cli, tmp_path_factory, server, gpu):
    folder = tmp_path_factory.mktemp("mk")
    text = (
        f"model: {{n_blocks: 4, block_gb: 1, kv_bytes_per_token_per_block: 1000}}\n"
        f"gpus: {{{json.dumps(gpu)}: {{memory_gb: 8, decode_ms_per_block: 5}}}}\n"
        f"servers: [{{name: {json.dumps(server)}, gpu: {json.dumps(gpu)}, rtt_ms: {{c: 10}}}}]\n"
        f"clients: [{{name: c}}]\n"
    )
    (folder / "s.yaml").write_text(text)
    code, out, err = cli("plan", folder / "s.yaml", "--no-quality")
    assert code == 0, err
    assert server in out and gpu in out
    code, out, err = cli("plan", folder / "s.yaml", "--set", f"servers.0.gpu={json.dumps(gpu + '[/x]')}")
    one_error_line(code, out, err, starts=f"servers.0.gpu: unknown GPU type {gpu + '[/x]'!r}")


# ---- paths are checked before any work ----------------------------------------------------------------------


def test_out_that_cannot_be_created_fails_before_work(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error_line(*cli("compare", SWARM, "--runs", 1, "--out", blocker / "sub"), starts="--out: cannot create the folder")


def test_csv_into_a_missing_folder_fails_before_work(cli, tmp_path):
    code, out, err = cli("simulate", SWARM, "--csv", tmp_path / "missing" / "r.csv")
    one_error_line(code, out, err, starts="--csv: the folder")
    assert not (tmp_path / "missing").exists()


def test_simulate_json_and_csv_writes_both(cli, tmp_path):
    code, out, err = cli("simulate", SWARM, "--method", "petals", "--requests", 5, "--json", "--csv", tmp_path / "r.csv")
    assert code == 0, err
    doc = json.loads(out)
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 and rows[0].startswith("run,method,request")
    record = json.loads((tmp_path / "r.csv.run.json").read_text())["run"]
    assert record == doc["run"]


# ---- reproducible outputs -----------------------------------------------------------------------------------


def test_summary_records_the_run_and_reruns_from_the_file_alone(cli, tmp_path):
    args = ("--runs", 2, "--requests", 8, "--methods", "petals,cg-bprr", "--seed", 3)
    code, out, err = cli("compare", "paper-abvt", *args, "--set", "workload.rate_per_s=0.3", "--out", tmp_path / "a")
    assert code == 0, err
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    run = summary["run"]
    import swarmplan

    assert run["swarmplan_version"] == swarmplan.__version__ and run["seed"] == 3
    assert run["sets"] == ["workload.rate_per_s=0.3"] and run["scenario"]["workload"]["rate_per_s"] == 0.3
    assert "--set workload.rate_per_s=0.3" in run["command_line"]
    # The file alone (no --set) gives the same numbers.
    code, out, err = cli("compare", tmp_path / "a" / "summary.json", *args, "--out", tmp_path / "b")
    assert code == 0, err
    again = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert again["per_run"] == summary["per_run"]


def test_join_order_in_simulate_and_compare_is_the_scenario_field(cli):
    order = "par-a100,fra-ws,ams-ws,fra-a100"
    code, out, _ = cli("plan", SWARM, "--method", "opt-num", "--join-order", order, "--json", "--no-quality")
    assert json.loads(out)["order"] == order.split(",")
    by_option = json.loads(cli("simulate", SWARM, "--method", "petals", "--join-order", order, "--json")[1])
    by_field = json.loads(
        cli("simulate", SWARM, "--method", "petals", "--json", "--set", f"placement.petals_join_order=[{order}]")[1]
    )
    default = json.loads(cli("simulate", SWARM, "--method", "petals", "--json")[1])
    assert by_option["summary"] == by_field["summary"] != default["summary"]
    assert by_option["run"]["scenario"]["placement"]["petals_join_order"] == order.split(",")
    code, out, err = cli("compare", SWARM, "--methods", "petals", "--runs", 1, "--join-order", "fra-ws,nobody")
    one_error_line(code, out, err, starts="--join-order: unknown server(s) 'nobody'")


# ---- examples/ ---------------------------------------------------------------------------------------------


def test_example_swarm_plans_and_exports_petals_commands(cli):
    code, out, err = cli("plan", SWARM, "--petals-commands")
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("python -m petals.cli.run_server")]
    names = ["fra-a100", "fra-ws", "ams-ws", "par-a100"]
    assert [ln.split("--public_name ")[1].split()[0] for ln in lines] == names
    spans = [tuple(map(int, ln.split("--block_indices ")[1].split()[0].split(":"))) for ln in lines]
    held = np.zeros(70, dtype=int)
    for a, b in spans:
        held[a:b] += 1
    assert (held >= 1).all()  # the plan covers all 70 BLOOM blocks


def test_example_on_an_rtt_csv_uses_the_listed_arrival_times(cli):
    code, out, err = cli("simulate", EXAMPLES / "rtt-csv.yaml", "--method", "petals", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["requests"] == 8  # one per line of arrivals.txt
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario(str(EXAMPLES / "rtt-csv.yaml"))
    sw = realize(sc, np.random.default_rng(0), base)
    # warsaw–milan is not in the CSV: the shortest path over the given pairs, 12 + 14 ms.
    assert sw.rtt_raw_server_ms[0, 2] == 26.0 and sw.rtt_raw_client_ms.tolist() == [[24.0, 18.0, 30.0]]


def test_an_assumed_server_rtt_is_in_every_output(cli, tmp_path):
    (tmp_path / "s.yaml").write_text(
        "model: {n_blocks: 4, block_gb: 1, kv_bytes_per_token_per_block: 1000}\n"
        "gpus: {g: {memory_gb: 6, decode_ms_per_block: 5}}\n"
        "servers: [{name: a, gpu: g, rtt_ms: {c: 10}}, {name: b, gpu: g, rtt_ms: {c: 20}}]\nclients: [{name: c}]\n"
    )
    for args in (("plan",), ("simulate", "--method", "petals", "--requests", 3)):
        code, out, err = cli(*args, tmp_path / "s.yaml")
        assert code == 0 and "assumed: timing.petals_unknown_rtt_ms = 300" in out, err
        code, out, err = cli(*args, tmp_path / "s.yaml", "--json")
        assert json.loads(out)["assumptions"][0]["value"] == 300.0
    code, out, err = cli(
        "compare", tmp_path / "s.yaml", "--runs", 1, "--requests", 3, "--methods", "petals", "--out", tmp_path / "o"
    )
    assert "assumed: timing.petals_unknown_rtt_ms = 300" in out
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["assumptions"][0]["value"] == 300.0


def test_a_placement_that_leaves_blocks_bare_is_an_error_not_a_crash(cli, tmp_path):
    (tmp_path / "s.yaml").write_text(
        "model: {n_blocks: 4, block_gb: 1, kv_bytes_per_token_per_block: 1000}\n"
        "gpus: {g: {memory_gb: 3, decode_ms_per_block: 5}}\n"
        "servers: [{name: a, gpu: g, rtt_ms: {c: 10}}, {name: b, gpu: g, rtt_ms: {c: 20}}]\nclients: [{name: c}]\n"
    )
    code, out, err = cli("simulate", tmp_path / "s.yaml", "--method", "petals", "--requests", 3)
    one_error_line(code, out, err, starts="servers: run 0 (petals): the placement leaves block(s)")


# ---- any value in any numeric field: an answer or one error line, never a traceback ------------------------


def _numeric_keys():
    from test_input_classes import FLOAT_PATHS, INT_PATHS

    keys = []
    for path in FLOAT_PATHS + INT_PATHS:
        key = ".".join(str(p) for p in path)
        keys.append(key.replace("gpus.k.", "gpus.a100-80gb.").replace(".k", ".a100-80gb"))
    return keys


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(_numeric_keys()),
    value=st.one_of(
        st.integers(-3, 10**20).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["true", "[]", "{}", "null", "'[/x]'", ".nan", "1e308", "1e-308"]),
    ),
)
def test_any_value_in_any_numeric_field_gets_an_answer_or_one_line(cli, key, value):
    code, out, err = cli("plan", SWARM, "--no-quality", "--json", "--set", f"{key}={value}")
    assert "Traceback" not in err
    if code == 0:
        json.loads(out)
        return
    assert code == 2 and out == ""
    first, *more = err.strip().splitlines()
    assert first.startswith(("error: ", "no solution: "))  # bad input, or a valid one without a solution
    # Several problems in one scenario: listed all at once, one line each under the first.
    assert not more or (first == "error: scenario: invalid scenario:" and all(ln.startswith("  ") for ln in more)), err


@pytest.mark.parametrize("scenario", ["split-edge", "split-swarm"])
def test_split_json_is_one_document_with_its_run(cli, scenario):
    code, out, err = cli("split", scenario, "--json", "--requests", 20)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["run"]["command"] == "split" and doc["run"]["scenario"]["name"] == scenario
