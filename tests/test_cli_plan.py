"""``swarmplan plan``/``scenarios``/``schema`` and the bad-input contract: one message, exit 2, no traceback."""

import json

import pytest


def test_plan_json_is_one_object_with_1_based_inclusive_blocks(run_cli):
    code, out, err = run_cli("plan", "paper-abvt", "--method", "cg-bp", "--json", "--seed", "1")
    assert code == 0, err
    doc = json.loads(out)
    assert {"scenario", "method", "n_blocks", "R", "bound_ms_per_token", "servers"} <= set(doc)
    assert doc["n_blocks"] == 70 and doc["R"] >= 1 and doc["bound_ms_per_token"] > 0
    covered = set()
    for s in doc["servers"]:
        assert {"name", "gpu", "start_block", "end_block", "cache_slots"} <= set(s)
        covered |= set(range(s["start_block"], s["end_block"] + 1))
        a, b = map(int, s["petals_block_indices"].split(":"))
        assert (a, b) == (s["start_block"] - 1, s["end_block"])
    assert covered == set(range(1, 71))


@pytest.mark.parametrize("method", ["petals", "cg-bp"])
def test_plan_table(run_cli, method):
    code, out, _ = run_cli("plan", "paper-abvt", "--method", method)
    assert code == 0
    assert "servers/block" in out and "s01" in out and "cache slots" in out
    if method == "cg-bp":
        assert "bound" in out and "R = " in out


def test_plan_gsa_on_a_scenario_it_fits(run_cli):
    code, out, err = run_cli("plan", "paper-gtsce", "--method", "gsa", "--R", "20")
    assert code == 0, err
    assert "gsa placement" in out


def test_scenarios_and_schema(run_cli):
    code, out, _ = run_cli("scenarios")
    assert code == 0 and "paper-clustered" in out
    code, out, _ = run_cli("schema")
    assert code == 0 and "workload" in json.loads(out)["properties"]


def _bad(run_cli, *args):
    code, out, err = run_cli(*args)
    assert code == 2
    assert "Traceback" not in err + out
    return err


def test_unknown_model_preset(run_cli):
    err = _bad(run_cli, "plan", "--set", "model.preset=gpt-9")
    assert "model.preset" in err and "bloom-176b" in err


def test_negative_rate(run_cli):
    assert "workload.rate_per_s" in _bad(run_cli, "plan", "--set", "workload.rate_per_s=-0.5")


def test_missing_file(run_cli):
    assert "no built-in scenario or file" in _bad(run_cli, "plan", "/no/such/scenario.yaml")


def test_server_with_less_memory_than_one_block(run_cli, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "gpus:\n  tiny: {memory_gb: 0.8, decode_ms_per_block: 5}\n"
        "servers:\n  - {name: a, gpu: tiny, rtt_ms: {c: 10}}\nclients:\n  - {name: c}\n"
    )
    err = _bad(run_cli, "plan", str(f))
    assert "gpus.tiny.memory_gb" in err and "less than one block" in err


def test_blocks_no_placement_can_cover(run_cli, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "servers:\n  - {name: a, gpu: mig-1g-10gb, rtt_ms: {c: 10}}\n  - {name: b, gpu: mig-1g-10gb, rtt_ms: {c: 10}}\n"
        "clients:\n  - {name: c}\n"
    )
    err = _bad(run_cli, "plan", str(f), "--method", "petals")
    assert "servers" in err and "70 blocks" in err


def test_unknown_gpu_type(run_cli):
    err = _bad(run_cli, "plan", "--set", "servers.gpu_fractions={a100-80gb: 0.5, b200: 0.5}")
    assert "b200" in err and "servers.gpu_fractions" in err


def test_bad_set_syntax_and_unknown_method(run_cli):
    assert "--set" in _bad(run_cli, "plan", "--set", "workload.rate_per_s")
    assert "--method" in _bad(run_cli, "plan", "--method", "magic")


def test_infeasible_R(run_cli):
    assert "R" in _bad(run_cli, "plan", "--R", "5000")


def test_broken_yaml(run_cli, tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("servers: [\n")
    assert "not valid YAML" in _bad(run_cli, "plan", str(f))


def test_petals_given_join_order(run_cli):
    order = "s09,s08,s07,s06,s05,s04,s03,s02,s01"
    code, out, err = run_cli("plan", "--method", "petals", "--join-order", order, "--json", "--no-quality")
    assert code == 0, err
    servers = {s["name"]: s for s in json.loads(out)["servers"]}
    # The first joiner takes blocks 1..m (an empty swarm), whatever its GPU.
    assert servers["s09"]["start_block"] == 1
    assert "join_order" in _bad(run_cli, "plan", "--method", "petals", "--join-order", "s01,s02")
    assert "join_order" in _bad(run_cli, "plan", "--method", "petals", "--option", "petals.join_order=s01,s99")


def test_petals_commands_apply_the_placement(run_cli):
    code, out, _ = run_cli("plan", "--json", "--no-quality")
    servers = [s for s in json.loads(out)["servers"] if s["start_block"] is not None]
    code, out, err = run_cli("plan", "--petals-commands")
    assert code == 0, err
    lines = [ln for ln in out.strip().splitlines() if not ln.startswith("#")]
    assert len(lines) == len(servers)
    for line, s in zip(lines, servers):
        assert line.startswith("python -m petals.cli.run_server bigscience/bloom --block_indices ")
        assert f"--block_indices {s['start_block'] - 1}:{s['end_block']}" in line
        assert "--initial_peers $INITIAL_PEERS" in line and "--inference_max_length 148" in line
        # The pool fits in memory: weights + pool + autograd reserve ≤ GPU memory.
        tokens = int(line.split("--attn_cache_tokens ")[1].split()[0])
        m = s["end_block"] - s["start_block"] + 1
        gpu_mem = {"a100-80gb": 86.13, "mig-1g-10gb": 9.1}[s["gpu"]]
        used = 1.3234 * m + tokens * m * 57344 / 1e9 + 2.147483648
        assert used <= gpu_mem + 1e-3 and tokens >= 148


def test_named_but_missing_trace_and_incomplete_gpu_types_are_errors(run_cli):
    assert "workload.trace" in _bad(run_cli, "plan", "--set", "workload.trace=/no/trace.csv")
    assert "gpus.x.decode_ms_per_block" in _bad(run_cli, "plan", "--set", "gpus.x={memory_gb: 10}")


def test_errors_from_overrides_say_so(run_cli):
    err = _bad(run_cli, "plan", "--set", "workload.rate_per_s=-1")
    assert "--set: workload.rate_per_s" in err
