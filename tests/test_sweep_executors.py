"""Sweeps on a two-worker Dask LocalCluster, and a sweep process killed mid-way and resumed, give the same
table as one uninterrupted serial run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from swarmplan.experiments.executors import DaskExecutor
from swarmplan.experiments.grid import parse_axis
from swarmplan.experiments.sweep import SweepSpec, run_sweep

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_dask_local_cluster_gives_the_serial_table(tmp_path):
    spec = SweepSpec(
        "paper-abvt", (parse_axis("workload.rate_per_s=0.2,1.0"),), ("petals", "cg-bprr", "gbp-cr"), runs=2, requests=10, seed=5
    )
    run_sweep(spec, tmp_path / "serial")
    with DaskExecutor("local", cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True}) as ex:
        assert ex.workers == 2
        out = run_sweep(spec, tmp_path / "dask", ex)
    assert out.executor.startswith("dask (LocalCluster") and out.ran == 4
    assert pq.read_table(tmp_path / "dask" / "results.parquet").equals(pq.read_table(tmp_path / "serial" / "results.parquet"))


def test_killed_sweep_process_resumes_to_the_uninterrupted_table(tmp_path):
    args = [
        sys.executable,
        "-m",
        "swarmplan.cli.main",
        "sweep",
        "paper-abvt",
        "--grid",
        "workload.rate_per_s=0.1:1.0:0.1",
        "--methods",
        "petals,cg-bprr",
        "--runs",
        "2",
        "--requests",
        "20",
        "--log-every",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": SRC}
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*args, "--out", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = cut / "parts"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(parts.glob("*.parquet")) if parts.exists() else []) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done_at_kill = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert 2 <= len(done_at_kill) < 20 and not (cut / "results.parquet").exists()
    resumed = subprocess.run([*args, "--out", str(cut), "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f'"skipped": {len(done_at_kill)}' in resumed.stdout
    assert all(p.stat().st_mtime_ns == done_at_kill[p.name] for p in parts.glob("*.parquet") if p.name in done_at_kill)
    spec = SweepSpec("paper-abvt", (parse_axis("workload.rate_per_s=0.1:1.0:0.1"),), ("petals", "cg-bprr"), runs=2, requests=20)
    run_sweep(spec, tmp_path / "full")
    assert pq.read_table(cut / "results.parquet").equals(pq.read_table(tmp_path / "full" / "results.parquet"))
