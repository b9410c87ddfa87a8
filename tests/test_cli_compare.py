"""``swarmplan compare`` and ``simulate``: outputs, the summary.json contract, no silent overwrites."""

import csv
import json


def test_compare_writes_summary_and_requests(run_cli, tmp_path):
    out = tmp_path / "res"
    code, stdout, err = run_cli(
        "compare", "paper-abvt", "--methods", "petals,cg-bprr,gbp-cr", "--runs", "2", "--requests", "30", "--out", str(out)
    )
    assert code == 0, err
    text = " ".join(stdout.split())  # the title may wrap
    assert "profile 'fair'" in text and "PETALS cache test 'petals'" in text
    doc = json.loads((out / "summary.json").read_text())
    assert (doc["scenario"], doc["profile"], doc["runs"], doc["requests"]) == ("paper-abvt", "fair", 2, 30)
    for name in ("petals", "cg-bprr", "gbp-cr"):
        for metric in ("per_token_s", "ttft_s", "wait_s", "response_p95_s", "max_concurrency"):
            assert set(doc["methods"][name][metric]) == {"mean", "std"}
    rows = list(csv.DictReader((out / "requests.csv").open()))
    assert len(rows) == 2 * 3 * 30
    assert {r["method"] for r in rows} == {"petals", "cg-bprr", "gbp-cr"}
    # Nothing the user has is overwritten without asking.
    code, _, err = run_cli("compare", "--runs", "1", "--requests", "5", "--out", str(out))
    assert code == 2 and "would overwrite" in err and "--force" in err
    code, _, _ = run_cli("compare", "--runs", "1", "--requests", "5", "--out", str(out), "--force")
    assert code == 0


def test_compare_paper_profile_and_authors_cache_test(run_cli):
    code, stdout, err = run_cli(
        "compare",
        "--methods",
        "petals,cg-bprr",
        "--runs",
        "1",
        "--requests",
        "20",
        "--profile",
        "paper",
        "--petals-cache-test",
        "authors",
    )
    assert code == 0, err
    text = " ".join(stdout.split())
    assert "profile 'paper'" in text and "cache test 'authors'" in text


def test_compare_bad_options(run_cli):
    for args, field in (
        (["--methods", "petals,nope"], "--methods"),
        (["--profile", "fast"], "--profile"),
        (["--petals-cache-test", "x"], "--petals-cache-test"),
    ):
        code, _, err = run_cli("compare", "--runs", "1", *args)
        assert code == 2 and field in err and "Traceback" not in err


def test_simulate_prints_per_request_rows(run_cli):
    code, stdout, err = run_cli("simulate", "paper-abvt", "--method", "petals", "--requests", "8")
    assert code == 0, err
    assert "per-request results (8 requests)" in stdout and "profile: fair" in stdout
    code, stdout, _ = run_cli("simulate", "--requests", "50", "--limit", "3")
    assert "first 3" in stdout
    code, stdout, _ = run_cli("simulate", "--method", "cg-bprr", "--requests", "8", "--json")
    doc = json.loads(stdout)
    assert doc["method"] == "cg-bprr" and doc["summary"]["requests"] == 8


def test_plan_gbp_cr_shows_chains_and_bounds(run_cli):
    code, stdout, err = run_cli("plan", "paper-abvt", "--method", "gbp-cr", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["c"] >= 1 and doc["chains"]
    lo, hi = doc["theorem4_response_s"]["lower"], doc["theorem4_response_s"]["upper"]
    assert 0 < lo <= hi
    code, stdout, _ = run_cli("plan", "paper-abvt", "--method", "gbp-cr", "--c", "40")
    assert code == 0 and "c = 40 (given)" in stdout and "capacity" in stdout


def test_every_builtin_scenario_runs_every_method():
    from swarmplan.experiments.compare import compare
    from swarmplan.methods.registry import get_methods
    from swarmplan.scenario.loader import builtin_names, load_scenario

    for name in builtin_names():
        # scale-10k at full size is a benchmark (benchmarks/scale.py), not a unit test: a smaller draw of it.
        sc, base = load_scenario(name, ["servers.count=300"] if name == "scale-10k" else [])
        res = compare(sc, get_methods(None), 1, 25, 3, "paper", base_dir=base, keep_rows=False)
        for method, runs in res.per_run.items():
            s = runs[0]
            assert s["requests"] == 25 and s["per_token_s"] > 0, (name, method)
            assert s["response_mean_s"] >= s["service_s"], (name, method)


def test_compare_results_do_not_depend_on_worker_processes():
    from swarmplan.experiments.compare import compare
    from swarmplan.methods.registry import get_methods
    from swarmplan.scenario.loader import load_scenario

    sc, base = load_scenario("paper-abvt")
    methods = get_methods(["petals", "cg-bprr", "gbp-cr"])
    one = compare(sc, methods, 3, 40, 5, "fair", base_dir=base, jobs=1)
    two = compare(sc, methods, 3, 40, 5, "fair", base_dir=base, jobs=2)
    assert one.per_run == two.per_run and one.rows == two.rows


def test_errors_in_worker_processes_reach_the_user(run_cli):
    code, _, err = run_cli("compare", "--runs", "2", "--jobs", "2", "--set", "placement.R=5000", "--methods", "cg-bprr")
    assert code == 2 and "R = 5000" in err and "Traceback" not in err


def test_milp_method_runs_in_compare_when_asked(run_cli):
    code, stdout, err = run_cli(
        "compare", "--methods", "cg-bprr,milp", "--runs", "1", "--requests", "30", "--milp-time-limit", "20"
    )
    assert code == 0, err
    assert "milp" in stdout
    from swarmplan.methods.registry import get_methods

    assert "milp" not in [m.name for m in get_methods(None)], "the default set stays fast"
