"""Per-request rows streamed to CSV a chunk at a time (docs/research.md §8): the file equals the row-by-row
definition byte for byte, whatever the chunk and the worker processes, and streaming keeps no rows."""

import csv
import io
import json
import tracemalloc

import numpy as np
import pytest

from swarmplan.experiments.compare import compare
from swarmplan.experiments.request_log import REQUEST_FIELDS, RequestCsv
from swarmplan.methods.registry import get_methods
from swarmplan.scenario.loader import load_scenario


def reference_csv(result_rows_of) -> bytes:
    """The straightforward definition: one dict per request, Python's round on each NumPy value, DictWriter."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(REQUEST_FIELDS))
    writer.writeheader()
    for run, res, names in result_rows_of:
        wl = res.workload
        resp, ttft = res.response_ms, res.ttft_ms
        for r in range(wl.n):
            writer.writerow(
                {
                    "run": run,
                    "method": res.method,
                    "request": r,
                    "arrival_s": round(wl.arrival_ms[r] / 1000, 6),
                    "input_tokens": int(wl.input_tokens[r]),
                    "output_tokens": int(wl.output_tokens[r]),
                    "chain": ">".join(names[j] for j in res.chains[r]),
                    "blocks": ">".join(map(str, res.processed[r])),
                    "wait_s": round(res.wait_ms[r] / 1000, 6),
                    "ttft_s": round(ttft[r] / 1000, 6),
                    "completion_s": round((wl.arrival_ms[r] + resp[r]) / 1000, 6),
                    "response_s": round(resp[r] / 1000, 6),
                    "per_token_s": round(resp[r] / wl.output_tokens[r] / 1000, 6),
                }
            )
    return buf.getvalue().encode()


def utilisation_loop(res) -> np.ndarray:
    """Slot utilisation by its definition, one request and hop at a time."""
    n = len(res.placement.cache_slots)
    held = np.zeros(n)
    start, end = res.start_ms, res.completion_ms
    for r, (chain, ks) in enumerate(zip(res.chains, res.processed)):
        for j, k in zip(chain, ks):
            held[j] += k * (end[r] - start[r])
    cap = np.asarray(res.placement.cache_slots, dtype=float)
    horizon = end.max() - res.workload.arrival_ms.min()
    return np.divide(held, cap * horizon, out=np.zeros(n), where=cap > 0)


@pytest.fixture(scope="module")
def churned():
    """paper-abvt with a server that fails and returns: cut, resumed and re-routed requests in the rows."""
    sc, base = load_scenario("paper-abvt")
    from swarmplan.cli.common import with_churn

    return with_churn(sc, ["s09@40-120"], None, None), base


def _capture_results(monkeypatch):
    """Every SimResult that run_once hands to its sink, in order (the reference is built from them)."""
    import swarmplan.experiments.compare as cmp

    seen = []
    real = cmp.RunSink.__call__

    def spy(self, run, result, names):
        seen.append((run, result, names))
        return real(self, run, result, names)

    monkeypatch.setattr(cmp.RunSink, "__call__", spy)
    return seen


def test_streamed_csv_is_byte_identical_to_the_row_by_row_definition(churned, tmp_path, monkeypatch):
    sc, base = churned
    methods = get_methods(["petals", "cg-bprr", "gbp-cr", "petals-retry", "cgbp-jffc"])
    seen = _capture_results(monkeypatch)
    path = tmp_path / "requests.csv"
    res = compare(sc, methods, 2, 150, 4, "fair", base_dir=base, keep_rows=True, requests_csv=path, chunk_rows=7)
    assert len(seen) == 2 * 5 and res.requests_written == 2 * 5 * 150 and res.requests_file == path
    assert path.read_bytes() == reference_csv(seen)
    assert all(s["affected_requests"] > 0 for runs in res.per_run.values() for s in runs)  # cut and resumed requests
    for _, result, _ in seen:  # the compact record: equal chains are one shared tuple; utilisation unchanged
        assert len({id(c) for c in result.chains}) == len(set(result.chains))
        assert np.array_equal(result.slot_utilisation(), utilisation_loop(result))
    # The kept rows are the same values, and the kept-rows writer makes the same file.
    kept = tmp_path / "kept.csv"
    res.write_requests_csv(kept)
    assert kept.read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_streamed_csv_does_not_depend_on_chunk_or_worker_processes(churned, tmp_path):
    sc, base = churned
    methods = get_methods(["petals", "gbp-cr"])
    files = []
    for chunk, jobs in ((1, 1), (1000, 1), (13, 2)):
        path = tmp_path / f"r-{chunk}-{jobs}.csv"
        compare(sc, methods, 3, 60, 9, "fair", base_dir=base, keep_rows=False, requests_csv=path, chunk_rows=chunk, jobs=jobs)
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]
    assert files[0].count(b"\r\n") == 1 + 3 * 2 * 60
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".csv")] == []  # parts folder removed


def test_streaming_keeps_no_rows(tmp_path):
    """Chunk 1000 over 2 × 6000 rows: the writer never holds more than 1000, nothing is kept in the result,
    and the traced peak grows with requests far slower than keeping the rows does."""
    sc, base = load_scenario("paper-abvt", ["workload.rate_per_s=0.05"])
    methods = get_methods(["gbp-cr", "cgbp-jffc"])

    def peak(n, stream):
        path = tmp_path / f"{n}-{stream}.csv"
        tracemalloc.start()
        to = path if stream else None
        res = compare(sc, methods, 1, n, 0, "fair", base_dir=base, keep_rows=not stream, requests_csv=to, chunk_rows=1000)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return res, top

    peak(100, True)  # imports, compiled kernels and caches are allocated once, not per request
    peak(100, False)
    res, small = peak(3000, True)
    assert res.rows == [] and res.requests_written == 2 * 3000 and res.most_rows_held == 1000
    res, big = peak(6000, True)
    assert res.rows == [] and res.requests_written == 2 * 6000 and res.most_rows_held == 1000
    kept_small, kept_big = peak(3000, False)[1], peak(6000, False)[1]
    streamed_per_request = (big - small) / 3000
    kept_per_request = (kept_big - kept_small) / 3000
    # Kept: two methods' rows of ~13 Python objects each; streamed: one method's compact arrays at a time.
    print(f"traced bytes per request: streamed {streamed_per_request:.0f}, kept {kept_per_request:.0f}")
    assert kept_per_request > 1000, kept_per_request
    assert streamed_per_request < 400 and streamed_per_request < kept_per_request / 4, (streamed_per_request, kept_per_request)


def test_request_csv_holds_one_chunk_and_writes_nothing_without_rows(tmp_path):
    w = RequestCsv(tmp_path / "x.csv", chunk=3)
    assert w.close() is None and not (tmp_path / "x.csv").exists()  # no rows, no file (split methods only)
    with pytest.raises(ValueError):
        RequestCsv(tmp_path / "y.csv", chunk=0)


def test_requests_churn_never_served_have_empty_chains_and_null_stats(tmp_path):
    """Every server that holds some block fails for good: the requests never served get a row with an empty
    chain and NaN times (was a traceback), and a method with no finished request gets null metrics."""
    sc, base = load_scenario("paper-abvt")
    from swarmplan.cli.common import with_churn

    sc = with_churn(sc, [f"s0{i}@0.001" for i in range(1, 7)], None, None)
    path = tmp_path / "r.csv"
    res = compare(sc, get_methods(["petals"]), 1, 20, 0, "fair", base_dir=base, keep_rows=False, requests_csv=path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 20
    unserved = [r for r in rows if r["chain"] == ""]
    assert unserved and all(r["blocks"] == "" and r["response_s"] == "nan" for r in unserved)
    doc = json.loads(json.dumps(res.to_json()))
    assert res.per_run["petals"][0]["unfinished_requests"] == 20
    assert doc["methods"]["petals"]["per_token_s"] == {"mean": None, "std": None}


def test_failed_run_leaves_no_partial_file(run_cli, tmp_path):
    """gbp-cr writes its rows, then cg-bprr cannot place R = 5000: no requests.csv, no partial, no parts."""
    for jobs in ("1", "2"):
        out = tmp_path / f"o{jobs}"
        args = ["--runs", "2", "--jobs", jobs, "--requests", "20", "--set", "placement.R=5000", "--out", str(out)]
        code, _, err = run_cli("compare", *args, "--methods", "gbp-cr,cg-bprr")
        assert code == 2 and "R = 5000" in err
        assert sorted(p.name for p in out.iterdir()) == []


def test_compare_plot_uses_the_kept_response_times(tmp_path):
    sc, base = load_scenario("paper-abvt")
    methods = get_methods(["petals", "gbp-cr"])
    res = compare(sc, methods, 2, 30, 1, "fair", base_dir=base, keep_rows=True, keep_responses=True, jobs=2)
    frame = res.response_frame()  # method-major; the rows are run-major
    for m in ("petals", "gbp-cr"):
        want = [r["response_s"] for r in res.rows if r["method"] == m]
        assert frame.loc[frame["method"] == m, "response_s"].tolist() == want
    assert len(frame) == len(res.rows) == 2 * 2 * 30


def test_run_setup_serves_compare_and_simulate(tmp_path):
    from swarmplan.cli.common import run_setup
    from swarmplan.errors import SwarmplanError

    common = dict(profile="fair", cache_test="petals", milp_time_limit=30.0, mtbf=None, downtime=None)
    setup = run_setup(
        "paper-abvt",
        ["servers.count=9"],
        fail=["s02@10-20"],
        join_order="s02,s01",
        options=["milp.time_limit_s=5"],
        **common,
    )
    sc = setup.scenario
    assert sc.churn.events[-1].server == "s02" and sc.churn.events[-1].return_s == 20
    assert sc.placement.petals_join_order == ["s02", "s01"] and setup.join_order_given
    assert setup.overrides == {"milp": {"time_limit_s": 5.0}}
    for bad, field in (({"profile": "x"}, "--profile"), ({"milp_time_limit": 0.0}, "--milp-time-limit")):
        with pytest.raises(SwarmplanError) as err:
            run_setup("paper-abvt", None, fail=None, join_order=None, options=None, **{**common, **bad})
        assert err.value.field == field
