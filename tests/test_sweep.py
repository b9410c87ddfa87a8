"""``swarmplan sweep``: every cell equals `compare` on that cell's scenario, rows stream to Parquet, a stopped
sweep resumes without redoing or rewriting finished tasks, executors do not change results."""

import json

import pyarrow.parquet as pq
import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.compare import compare
from swarmplan.experiments.executors import LocalExecutor
from swarmplan.experiments.grid import parse_axis
from swarmplan.experiments.sweep import SweepSpec, read_results, run_sweep
from swarmplan.methods.registry import get_methods
from swarmplan.scenario.loader import load_scenario

METHODS = ("petals", "cg-bprr")


def small_spec(**kw):
    base = dict(
        scenario="paper-abvt",
        axes=(parse_axis("workload.rate_per_s=0.2,1.0"), parse_axis("servers.count=9,12")),
        methods=METHODS,
        runs=2,
        requests=12,
        seed=3,
    )
    base.update(kw)
    return SweepSpec(**base)


def test_every_cell_matches_compare_on_that_cell(tmp_path):
    spec = small_spec(keep_requests=True)
    outcome = run_sweep(spec, tmp_path / "s")
    assert (outcome.cells, outcome.tasks, outcome.ran, outcome.skipped, outcome.rows) == (4, 8, 8, 0, 16)
    df = read_results(tmp_path / "s")
    assert list(df["cell"]) == sorted(df["cell"]) and set(df["method"]) == set(METHODS)
    for rate, count in ((0.2, 12), (1.0, 9)):
        sc, base = load_scenario("paper-abvt", [f"workload.rate_per_s={rate}", f"servers.count={count}"])
        ref = compare(sc, get_methods(list(METHODS)), 2, 12, 3, "fair", base_dir=base, keep_rows=False)
        cell = df[(df["workload.rate_per_s"] == rate) & (df["servers.count"] == count)]
        for m in METHODS:
            for run in range(2):
                row = cell[(cell["method"] == m) & (cell["run"] == run)].iloc[0]
                want = ref.per_run[m][run]
                assert row["per_token_s"] == want["per_token_s"] and row["response_p95_s"] == want["response_p95_s"]
                assert row["max_concurrency"] == want["max_concurrency"] and row["requests"] == 12
                assert json.loads(row["extra_json"])["slot_utilisation_per_server"] == want["slot_utilisation_per_server"]
    req = pq.read_table(tmp_path / "s" / "requests.parquet")
    assert req.num_rows == 4 * 2 * 2 * 12 and {"cell", "workload.rate_per_s", "servers.count", "response_s"} <= set(
        req.column_names
    )


def test_stopped_sweep_resumes_without_redoing_or_rewriting(tmp_path):
    spec = small_spec()
    full = run_sweep(spec, tmp_path / "full")

    class Stop(Exception):
        pass

    def stop_after_three(done, total):
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(spec, tmp_path / "cut", progress=stop_after_three)
    parts = sorted((tmp_path / "cut" / "parts").glob("*.parquet"))
    assert len(parts) == 3 and not (tmp_path / "cut" / "results.parquet").exists()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in parts}
    (tmp_path / "cut" / "parts" / "c000003-r0001.parquet.tmp").write_bytes(b"half-written")  # a killed writer's leftover
    seen = []
    resumed = run_sweep(spec, tmp_path / "cut", progress=lambda d, t: seen.append(d))
    assert (resumed.ran, resumed.skipped) == (5, 3) and seen[0] == 3 and seen[-1] == 8
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "cut" / "parts").glob("*.parquet")}
    assert all(after[n] == v for n, v in before.items()) and not list((tmp_path / "cut" / "parts").glob("*.tmp"))
    assert pq.read_table(tmp_path / "cut" / "results.parquet").equals(pq.read_table(tmp_path / "full" / "results.parquet"))
    again = run_sweep(spec, tmp_path / "cut")  # nothing left to do
    assert (again.ran, again.skipped, again.rows) == (0, 8, full.rows)
    sessions = (tmp_path / "cut" / "sessions.jsonl").read_text().splitlines()
    assert [json.loads(s)["ran"] for s in sessions] == [5, 0]


def test_worker_processes_give_identical_tables(tmp_path):
    spec = small_spec(runs=3)
    run_sweep(spec, tmp_path / "serial")
    with LocalExecutor(2) as ex:
        out = run_sweep(spec, tmp_path / "jobs", ex)
    assert out.executor == "local processes (2)"
    assert pq.read_table(tmp_path / "jobs" / "results.parquet").equals(pq.read_table(tmp_path / "serial" / "results.parquet"))


def test_a_folder_holding_another_sweep_is_not_overwritten(tmp_path):
    run_sweep(small_spec(runs=1), tmp_path / "s")
    with pytest.raises(SwarmplanError) as exc:
        run_sweep(small_spec(runs=2), tmp_path / "s")
    assert exc.value.field == "--out" and "runs" in exc.value.problem and "--force" in exc.value.fix
    out = run_sweep(small_spec(runs=2), tmp_path / "s", force=True)
    assert (out.ran, out.skipped) == (8, 0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(SwarmplanError, match="not empty"):
        run_sweep(small_spec(), tmp_path / "other")


def test_a_bad_cell_fails_before_any_work(tmp_path):
    spec = small_spec(axes=(parse_axis("servers.count=9,0"),))
    with pytest.raises(SwarmplanError) as exc:
        run_sweep(spec, tmp_path / "s")
    assert exc.value.field == "--grid" and "servers.count=0" in exc.value.problem
    assert not (tmp_path / "s").exists()


def test_cli_sweep_json_and_errors(run_cli, tmp_path):
    out = tmp_path / "cli"
    code, stdout, err = run_cli(
        "sweep",
        "paper-abvt",
        "--grid",
        "workload.output_tokens=64,128",
        "--methods",
        "petals,gbp-cr",
        "--runs",
        "1",
        "--requests",
        "8",
        "--out",
        str(out),
        "--json",
        "--option",
        "gbp-cr.c=4",
    )
    assert code == 0, err
    doc = json.loads(stdout)
    assert (doc["cells"], doc["tasks"], doc["rows"]) == (2, 2, 4) and "2/2 tasks (100 %)" in err
    df = read_results(out)
    assert list(df["workload.output_tokens"].unique()) == [64, 128] and list(df["c"].dropna()) == [
        4,
        4,
    ]  # gbp-cr's c, as --option set it
    for args, field in (
        (["--grid", "nope"], "--grid"),
        (["--methods", "petals,nope"], "--methods"),
        (["--profile", "x"], "--profile"),
        (["--jobs", "2", "--dask", "local"], "--jobs"),
        (["--dask", "http://x"], "--dask"),
        (["--option", "gbp-cr.nope=1"], "gbp-cr"),
    ):
        code, _, err = run_cli("sweep", "--runs", "1", "--requests", "5", "--out", str(tmp_path / "bad"), *args)
        assert code == 2 and field in err and "Traceback" not in err, (args, err)


def test_a_cell_the_methods_cannot_serve_is_recorded_not_fatal(tmp_path):
    spec = small_spec(axes=(parse_axis("servers.count=9,2"),), runs=1)  # 2 MIG/A100 servers cannot hold 70 blocks
    outcome = run_sweep(spec, tmp_path / "s")
    assert outcome.failed == 1 and "servers.count=2" in outcome.first_error and "blocks" in outcome.first_error
    df = read_results(tmp_path / "s")
    bad, good = df[df["servers.count"] == 2], df[df["servers.count"] == 9]
    assert len(bad) == len(good) == 2 and bad["per_token_s"].isna().all() and bad["error"].notna().all()
    assert good["error"].isna().all() and good["per_token_s"].notna().all()


def test_metric_lists_cannot_drift_from_each_other_or_from_a_real_summary():
    """compare.METRICS and store's typed columns both come from experiments.metrics; a real run's summaries
    carry every one of them with that type, and a results row keeps each in its typed column."""
    from swarmplan.experiments import store
    from swarmplan.experiments.compare import METRICS, run_once
    from swarmplan.experiments.metrics import RUN_METRICS

    assert METRICS == tuple(RUN_METRICS)
    for name, kind in RUN_METRICS.items():
        assert (name in store.FLOAT_METRICS, name in store.INT_METRICS) == (kind is float, kind is int)
    sc, base = load_scenario("paper-abvt")
    summaries, _ = run_once(sc, list(METHODS), 0, 12, 3, "fair", "petals", base, keep_rows=False)
    rows = store.summary_rows({"cell": 0, "run": 0, "seed": 3}, summaries)
    for row, s in zip(rows, summaries.values()):
        assert all(type(s[name]) is kind for name, kind in RUN_METRICS.items())
        assert all(row[name] == s[name] for name in METRICS)
        assert not set(json.loads(row["extra_json"])) & set(store.FLOAT_METRICS + store.INT_METRICS)
        assert row["R"] == s["R"] and row["bound_ms_per_token"] == s["bound_ms_per_token"]
