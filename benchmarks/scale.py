"""Scale benchmark (issue 15): servers, overload throughput, placement time and peak memory.

Usage: python benchmarks/scale.py [--servers 100 1000 10000] [--overload-requests 2000]
                                  [--placement-servers 10000] [--memory-requests 100000 1000000]
                                  [--memory-methods gbp-cr,cg-bprr,petals] [--memory-all] [--milp]
                                  [--timeout 900] [--skip servers,overload,placement,memory]

Times are CPU seconds of one process (time.process_time: the machine may be shared; the code is
single-threaded), wall time of each child is kept in its result. Every measurement runs in its own child process (so a timeout or a memory blow-up of one does not stop the
rest, and the peak RSS is that measurement's own). The swarms are built here from public pieces that every
version of swarmplan has (the paper-gtsce scenario for model, GPUs and timing; RIPE Atlas EU anchors for the
network; several servers per anchor), so the same script measures the code before and after a change on the
same swarms. Each row prints a fingerprint of the results: equal fingerprints mean identical results.

Tables:
* servers: every default method end to end (placement + simulation of 100 requests), as ``compare --runs 1``
  does, at each size; the growth exponent is the slope of log(time) against log(servers).
* overload: simulated requests/s per method on paper-gtsce at λ = 4 req/s (placement excluded).
* placement: CG-BP, PETALS and GBP-CR (with its choice of c) on the largest swarm; the MILP's largest size
  solved within 60 s (--milp).
* memory: peak RSS of ``compare`` with per-request output to disk (requests.csv), each of --memory-methods
  alone and (--memory-all) every default method in one run; rows written and a fingerprint of the summaries.
  Measured before and after streaming the rows (issue 15; docs/research.md §8):

  | requests | method(s) | peak RSS MB, rows kept (before) | peak RSS MB, rows streamed (after) |
  |---|---|---|---|
  | 10⁵ | gbp-cr / cg-bprr / petals | 279 / 290 / 289 | 235 / 235 / 222 |
  | 10⁵ | every default method | 939 | 264 |
  | 10⁶ | gbp-cr / cg-bprr / petals | 1113 / 1229 / 1227 | 385 / 378 / 380 |
  | 10⁶ | every default method (9·10⁶ rows) | not run (≈ 9 GB of rows) | 396 |
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE_MAX_ROWS = 3_000_000  # a baseline that keeps every row in memory (~1 KB each) is not run beyond this


# ---------------------------------------------------------------------------------------------- swarms


def bench_swarm(n_servers: int, seed: int = 0):
    """paper-gtsce's model/GPU mix with ``n_servers`` servers at random RIPE Atlas EU anchors (shared)."""
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.network import load_ripe_atlas
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario("paper-gtsce")
    small = realize(sc, np.random.default_rng(seed), base)
    net = load_ripe_atlas("ripe-atlas-eu", None)
    rng = np.random.default_rng([seed, n_servers])
    client = int(rng.integers(len(net.names)))
    nodes = rng.integers(len(net.names), size=n_servers)
    n_a100 = int(math.floor(0.2 * n_servers + 0.5))
    is_a100 = np.zeros(n_servers, dtype=bool)
    is_a100[n_servers - n_a100 :] = True  # slower types first, as drawn swarms are ordered
    a = small.server_gpus.index("a100-80gb")
    g = small.server_gpus.index("mig-1g-10gb")
    pick = np.where(is_a100, a, g)

    def col(arr):
        return np.asarray(arr)[pick]

    try:  # server RTTs kept per node where this version can (docs/model.md §11.2); the same values either way
        from swarmplan.scenario.server_rtt import ServerRtt

        rtt_servers = ServerRtt(nodes, net.rtt_raw_ms)
    except ImportError:
        rtt_servers = net.rtt_raw_ms[np.ix_(nodes, nodes)]

    swarm = dataclasses.replace(
        small,
        scenario=f"bench-{n_servers}",
        server_names=tuple(f"s{i + 1:05d}" for i in range(n_servers)),
        server_gpus=tuple(small.server_gpus[i] for i in pick.tolist()),
        server_locations=tuple(net.names[i] for i in nodes.tolist()),
        memory_gb=col(small.memory_gb),
        decode_ms_per_block=col(small.decode_ms_per_block),
        prefill_ms_per_token_per_block=col(small.prefill_ms_per_token_per_block),
        prefill_ms_per_block=col(small.prefill_ms_per_block),
        times_from_preset=col(small.times_from_preset),
        max_blocks=col(small.max_blocks),
        roofline=col(small.roofline),
        tflops=col(small.tflops),
        bandwidth_gb_per_ms=col(small.bandwidth_gb_per_ms),
        per_block_overhead_ms=col(small.per_block_overhead_ms),
        inference_rps=col(small.inference_rps),
        forward_rps=col(small.forward_rps),
        network_rps=col(small.network_rps),
        client_locations=(net.names[client],),
        rtt_raw_client_ms=net.rtt_raw_ms[client][nodes][None, :].copy(),
        rtt_raw_server_ms=rtt_servers,
    )
    return sc, base, PerfModel.from_swarm(swarm)


def fingerprint(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def default_methods():
    from swarmplan.methods.registry import get_methods

    return get_methods(None)


def run_methods(pm, sc, base, n_req: int, rate: float, only=None, seed: int = 0, exclude=()):
    """What compare's run_once does for one run, with per-method (build, simulate) times."""
    from swarmplan.methods.registry import MethodContext, allocation_delay_ms
    from swarmplan.scenario.workload import draw_workload
    from swarmplan.sim.run import run_policy

    spec = sc.workload.model_copy(update={"rate_per_s": rate})
    wl = draw_workload(spec, pm.swarm.n_clients, np.random.default_rng([seed, 1]), n_req, base)
    ctx = MethodContext(pm, np.random.default_rng([seed, 2]), rate, sc.placement.R, "petals")
    out = {}
    for m in default_methods():
        if (only and m.name not in only) or m.name in exclude:
            continue
        t0 = time.process_time()
        placement, policy = m.build(ctx)
        t1 = time.process_time()
        res = run_policy(pm, placement, wl, policy, allocation_delay_ms(m, "fair", pm), m.name)
        t2 = time.process_time()
        summary = res.summary()
        out[m.name] = {"build_s": t1 - t0, "sim_s": t2 - t1, "fp": fingerprint(summary)}
    return out


# ------------------------------------------------------------------------------------- child tasks


def task_servers(n: int, exclude: str = "-") -> dict:
    t0 = time.process_time()
    sc, base, pm = bench_swarm(n)
    t1 = time.process_time()
    per = run_methods(pm, sc, base, 100, sc.workload.rate_per_s, exclude=set(exclude.split(",")) - {"-"})
    t2 = time.process_time()
    return {"swarm_s": t1 - t0, "methods_s": t2 - t1, "per_method": per, "fp": fingerprint({k: v["fp"] for k, v in per.items()})}


def task_realize(n: int) -> dict:
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize

    try:
        sc, base = load_scenario("scale-10k", [f"servers.count={n}"])
    except Exception as exc:  # the scenario does not exist in this version
        return {"error": type(exc).__name__}
    t0 = time.process_time()
    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))
    return {"realize_s": time.process_time() - t0, "servers": pm.n_servers}


def task_overload(n_req: int) -> dict:
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.loader import load_scenario
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario("paper-gtsce")
    pm = PerfModel.from_swarm(realize(sc, np.random.default_rng(0), base))
    run_methods(pm, sc, base, 50, 4.0)  # warm-up: imports and compiled-kernel loading are not simulation
    per = run_methods(pm, sc, base, n_req, 4.0)
    return {"per_method": {k: {**v, "rps": n_req / v["sim_s"]} for k, v in per.items()}}


def task_placement(n: int) -> dict:
    try:
        from swarmplan.placement.gbpcr_plan import plan_chains
    except ImportError:  # before the methods-as-data reshape
        from swarmplan.methods.gbpcr import plan_chains
    from swarmplan.placement.registry import place

    sc, base, pm = bench_swarm(n)
    out = {}
    for name in ("cg-bp", "petals"):
        t0 = time.process_time()
        pl = place(name, pm, None, np.random.default_rng(0), sc.workload.rate_per_s)
        out[name] = {"s": time.process_time() - t0, "fp": fingerprint([pl.start.tolist(), pl.n_blocks.tolist()])}
    t0 = time.process_time()
    plan = plan_chains(pm, sc.workload.rate_per_s)
    out["gbp-cr"] = {
        "s": time.process_time() - t0,
        "c": plan.c,
        "candidates": plan.candidates,
        "fp": fingerprint([plan.placement.start.tolist(), [ch.servers for ch in plan.chains]]),
    }
    return out


def task_milp(limit_s: float) -> dict:
    from swarmplan.errors import SwarmplanError
    from swarmplan.placement.milp import MilpOptions
    from swarmplan.placement.registry import place

    rows = []
    for n in (10, 20, 40, 80, 160, 320):
        sc, base, pm = bench_swarm(n)
        t0 = time.process_time()
        try:
            pl = place(
                "milp", pm, None, np.random.default_rng(0), sc.workload.rate_per_s, options=MilpOptions(time_limit_s=limit_s)
            )
        except SwarmplanError as err:
            rows.append({"servers": n, "s": time.process_time() - t0, "status": f"error: {err.problem}"})
            break
        info = pl.info
        rows.append({"servers": n, "s": time.process_time() - t0, "status": str(info.get("status")), "gap": info.get("gap")})
        if time.process_time() - t0 >= limit_s:
            break
    return {"rows": rows}


def task_memory(n_req: int, methods: str) -> dict:
    """``compare paper-gtsce --runs 1 --requests N --methods M --out DIR`` in this process (its peak RSS is
    the child's); ``methods`` "default" means every default method. The output folder is removed after."""
    import shutil

    from swarmplan.cli.main import app

    out = tempfile.mkdtemp(prefix="scale-mem-")
    chosen = [] if methods == "default" else ["--methods", methods]
    t0 = time.process_time()
    try:
        try:
            app(
                ["compare", "paper-gtsce", "--runs", "1", "--requests", str(n_req), *chosen, "--out", out],
                standalone_mode=False,
            )
        except SystemExit:
            pass
        cpu = time.process_time() - t0
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        with open(os.path.join(out, "requests.csv"), "rb") as fh:
            rows = sum(1 for _ in fh) - 1
        with open(os.path.join(out, "summary.json")) as fh:
            fp = fingerprint(json.load(fh)["per_run"])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"s": cpu, "out_bytes": size, "rows": rows, "fp": fp}


TASKS = {
    "servers": task_servers,
    "realize": task_realize,
    "overload": task_overload,
    "placement": task_placement,
    "milp": task_milp,
    "memory": task_memory,
}


def child(argv: list[str]) -> None:
    name, *args = argv
    conv = [int(a) if a.isdigit() else (float(a) if a.replace(".", "", 1).isdigit() else a) for a in args]
    res = TASKS[name](*conv)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def spawn(args: list, timeout: float, src: str | None = None) -> dict:
    """Run one measurement in a child; ``src`` puts another checkout's ``src`` first (a baseline)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", *map(str, args)]
    env = None if src is None else {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["wall_s"] = time.perf_counter() - t0
            return res
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}


# ------------------------------------------------------------------------------------------ tables


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--overload-requests", type=int, default=2000)
    ap.add_argument("--placement-servers", type=int, default=10000)
    ap.add_argument("--memory-requests", type=int, nargs="+", default=[100000, 1000000])
    ap.add_argument("--memory-methods", default="gbp-cr,cg-bprr,petals", help="each measured alone, in its own process")
    ap.add_argument("--memory-all", action="store_true", help="also every default method in one run")
    ap.add_argument("--baseline-src", help="also measure memory with this checkout's src first on the path (before)")
    ap.add_argument("--milp", action="store_true", help="also find the MILP's largest size solved in 60 s")
    ap.add_argument("--timeout", type=float, default=900.0, help="per measurement (s)")
    ap.add_argument("--skip", default="", help="comma-separated tables to skip")
    ap.add_argument("--exclude", default="", help="comma-separated default methods the servers table leaves out")
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}
    import swarmplan

    print(
        f"swarmplan from {os.path.dirname(swarmplan.__file__)}; numba "
        f"{'on' if os.environ.get('SWARMPLAN_NUMBA', '1') != '0' else 'off'}; timeout {args.timeout:.0f} s"
    )

    if "servers" not in skip:
        left_out = f" except {args.exclude}" if args.exclude else ""
        print(f"\n## Servers: every default method{left_out}, 1 run, 100 requests (as compare --runs 1)")
        print(f"{'servers':>8} {'swarm s':>8} {'methods s':>10} {'peak MB':>8} {'fingerprint':>12}  slowest methods")
        pts = []
        for n in args.servers:
            r = spawn(["servers", n, args.exclude or "-"], args.timeout)
            if "methods_s" not in r:
                print(f"{n:>8} {'—':>8} {'>' + str(int(args.timeout)) if 'timeout' in r else 'error':>10}  {r}")
                continue
            pts.append((n, r["methods_s"]))
            slow = sorted(r["per_method"].items(), key=lambda kv: -(kv[1]["build_s"] + kv[1]["sim_s"]))[:3]
            desc = ", ".join(f"{k} {v['build_s']:.2f}+{v['sim_s']:.2f}" for k, v in slow)
            print(f"{n:>8} {r['swarm_s']:>8.2f} {r['methods_s']:>10.2f} {r['peak_rss_mb']:>8.0f} {r['fp']:>12}  {desc}")
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            print(f"growth exponent (log-log slope over {len(pts)} sizes): {np.polyfit(x, y, 1)[0]:.2f}")
        for n in args.servers:
            r = spawn(["realize", n], args.timeout)
            if "realize_s" in r:
                print(
                    f"scale-10k with servers.count={n}: realize + PerfModel {r['realize_s']:.2f} s, "
                    f"peak {r['peak_rss_mb']:.0f} MB"
                )
            else:
                print(f"scale-10k with servers.count={n}: not available ({r})")

    if "overload" not in skip:
        print(f"\n## Overload: paper-gtsce at λ = 4 req/s, {args.overload_requests} requests (placement excluded)")
        r = spawn(["overload", args.overload_requests], args.timeout)
        if "per_method" in r:
            print(f"{'method':>14} {'requests/s':>12} {'sim s':>8} {'fingerprint':>12}")
            for k, v in r["per_method"].items():
                print(f"{k:>14} {v['rps']:>12,.0f} {v['sim_s']:>8.2f} {v['fp']:>12}")
        else:
            print(r)

    if "placement" not in skip:
        print(f"\n## Placement on {args.placement_servers} servers")
        r = spawn(["placement", args.placement_servers], args.timeout)
        if "cg-bp" in r:
            for k in ("cg-bp", "petals", "gbp-cr"):
                extra = f" (c = {r[k]['c']}, {r[k]['candidates']} candidates)" if k == "gbp-cr" else ""
                print(f"{k:>8} {r[k]['s']:8.2f} s  fp {r[k]['fp']}{extra}")
            print(f"peak {r['peak_rss_mb']:.0f} MB")
        else:
            print(r)
        if args.milp:
            r = spawn(["milp", 60.0], args.timeout * 4)
            for row in r.get("rows", [r]):
                print(f"milp {row}")

    if "memory" not in skip:
        print("\n## Memory: compare paper-gtsce --runs 1 --methods M --requests N --out DIR (rows streamed to requests.csv)")
        if args.baseline_src:
            print(f"baseline: {args.baseline_src} (skipped where it would keep over {BASELINE_MAX_ROWS:,} rows in memory)")
        print(
            f"{'requests':>9} {'methods':>24} {'code':>8} {'cpu s':>8} {'peak RSS MB':>12} {'rows':>10} "
            f"{'output MB':>10} {'fingerprint':>12}"
        )
        groups = [m for m in args.memory_methods.split(",") if m] + (["default"] if args.memory_all else [])
        codes = [("this", None)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])
        for n in args.memory_requests:
            for methods in groups:
                width = len(default_methods()) if methods == "default" else len(methods.split(","))
                for code, src in codes:
                    if src is not None and n * width > BASELINE_MAX_ROWS:
                        print(f"{n:>9} {methods:>24} {code:>8}  skipped: {n * width:,} rows")
                        continue
                    r = spawn(["memory", n, methods], args.timeout, src)
                    if "s" in r:
                        print(
                            f"{n:>9} {methods:>24} {code:>8} {r['s']:>8.1f} {r['peak_rss_mb']:>12.0f} "
                            f"{r.get('rows', -1):>10} {r['out_bytes'] / 1e6:>10.1f} {r.get('fp', '—'):>12}"
                        )
                    else:
                        print(f"{n:>9} {methods:>24} {code:>8}  {r}")


if __name__ == "__main__":
    main()
