"""Sweep at scale: a 3-axis grid (≥ 100 cells × 5 runs) on local processes and on a Dask LocalCluster with
identical tables, a kill + resume, and peak memory for 10⁶ simulated requests in total.

    PYTHONPATH=src python benchmarks/sweep_scale.py [--work DIR] [--jobs 2] [--requests 50] [--mem-requests 2500]

Each sweep runs as its own `swarmplan sweep` process under /usr/bin/time -v (wall time, peak RSS of that
process; worker processes are reported separately by the OS and not included). Prints one line per number.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

SRC = str(Path(__file__).resolve().parents[1] / "src")
GRID = [
    "--grid",
    "workload.rate_per_s=0.1:1.0:0.1",
    "--grid",
    "servers.count=9,12,15,18,22",
    "--grid",
    "workload.output_tokens=64,128",
]  # 10 × 5 × 2 = 100 cells


def sweep_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "swarmplan.cli.main", "sweep", "paper-abvt", "--out", str(out), "--log-every", "30", *extra]


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB of the command's process, stderr)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return wall, rss, p.stderr


def same(a: Path, b: Path) -> bool:
    return pq.read_table(a / "results.parquet").equals(pq.read_table(b / "results.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/swarmplan-sweep-scale"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--mem-requests", type=int, default=5000)
    ap.add_argument("--mem-methods", default="cg-bprr")
    ap.add_argument("--phases", default="local,dask,cut,mem", help="comma-separated subset of local,dask,cut,mem")
    ap.add_argument("--cut-name", default="cut", help="folder (under --work) of the killed-and-resumed sweep")
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    if "local" in phases:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    common = [*GRID, "--methods", "petals,cg-bprr,gbp-cr", "--runs", "5", "--requests", str(args.requests)]
    if "local" in phases:
        wall, rss, _ = timed(sweep_cmd(args.work / "local", *common, "--jobs", str(args.jobs)))
        print(
            f"grid 100 cells × 5 runs × 3 methods × {args.requests} requests, --jobs {args.jobs}: {wall:.1f} s, main RSS {rss:.0f} MiB",
            flush=True,
        )
    if "dask" in phases:
        wall, rss, _ = timed(sweep_cmd(args.work / "dask", *common, "--dask", "local", "--dask-workers", str(args.jobs)))
        print(
            f"same grid, --dask local ({args.jobs} workers): {wall:.1f} s, main RSS {rss:.0f} MiB; "
            f"identical table: {same(args.work / 'local', args.work / 'dask')}",
            flush=True,
        )
    if "cut" in phases:  # kill mid-way, then resume
        cut = args.work / args.cut_name
        shutil.rmtree(cut, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": SRC}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            sweep_cmd(cut, *common, "--jobs", str(args.jobs)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while len(list((cut / "parts").glob("c*.parquet")) if (cut / "parts").exists() else []) < 200:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = time.perf_counter() - t0
        done = len(list((cut / "parts").glob("c*.parquet")))
        time.sleep(1)  # orphaned pool workers exit when their parent's pipe closes
        wall, rss, err = timed(sweep_cmd(cut, *common, "--jobs", str(args.jobs)))
        print(
            f"killed after {first:.1f} s with {done}/500 tasks done; resume: {wall:.1f} s; "
            f"identical table: {same(cut, args.work / 'local')}",
            flush=True,
        )
    # Peak memory: 10⁶ simulated requests (cells × runs × methods × requests), per-request rows streamed too.
    if "mem" not in phases:
        return
    n, methods = args.mem_requests, args.mem_methods.split(",")
    for cells_rate in ("0.1,0.2", "0.1:1.0:0.1"):
        cells = 2 * (2 if cells_rate == "0.1,0.2" else 10)
        total = cells * 10 * len(methods) * n
        out = args.work / f"mem-{cells}"
        shutil.rmtree(out, ignore_errors=True)
        wall, rss, _ = timed(
            sweep_cmd(
                out,
                "--grid",
                f"workload.rate_per_s={cells_rate}",
                "--grid",
                "workload.output_tokens=64,128",
                "--methods",
                args.mem_methods,
                "--runs",
                "10",
                "--requests",
                str(n),
                "--per-request",
            )
        )
        rows = pq.ParquetFile(out / "requests.parquet").metadata.num_rows
        print(
            f"{cells} cells × 10 runs × {len(methods)} method(s) × {n} requests = {total:,} simulated requests "
            f"({rows:,} per-request rows streamed): {wall:.1f} s, peak RSS {rss:.0f} MiB (serial, one process)",
            flush=True,
        )


if __name__ == "__main__":
    main()
