"""Measured vs predicted on real server processes for cg-bprr, petals and gbp-cr (docs/runtime.md §8.7).

Calibrates once on this machine, then for each method runs ``swarmplan validate`` (the scenario's requests on
5 real server processes at Abvt RTTs) and prints, per method, the MAPE of response time, per-token time and
TTFT for the step-level prediction and for the paper's model, with requests completed and waiting, token
identity and the host's load during the run. Needs the runtime extra. Time: calibration about 1 min, then
each method's arrivals plus its longest wait — 14.5 min in all on 2 cores shared with 4 other jobs (cg-bprr
3.7, petals 7.3 — PETALS' back-off reaches 2 min —, gbp-cr 2.4); less on an idle machine.

    python benchmarks/validate_table.py                       # validate-abvt, 50 requests per method
    python benchmarks/validate_table.py --set workload.rate_per_s=2 --requests 60 --out validate-table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def service_mape(rows) -> dict:
    """MAPE of service time (response − wait), which leaves out which retry instant a waiting request hit."""
    from swarmplan.runtime.validate import mape

    done = rows[~rows["lost"]]
    measured = done["measured_response_ms"] - done["measured_wait_ms"]
    return {p: mape(measured, done[f"{p}_response_ms"] - done[f"{p}_wait_ms"]) for p in ("step", "paper")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="validate-abvt")
    ap.add_argument("--methods", default="cg-bprr,petals,gbp-cr")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="scenario override dotted.key=value")
    ap.add_argument("--calibration", type=Path, help="JSON from `swarmplan calibrate --json` (default: calibrate now)")
    ap.add_argument("--out", type=Path, help="folder for each method's requests.csv and the table as JSON")
    args = ap.parse_args()

    from swarmplan.runtime.calibrate import calibrate
    from swarmplan.runtime.validate import run_validation, scenario_arch
    from swarmplan.scenario.loader import load_scenario

    t_all = time.monotonic()
    sc, base = load_scenario(args.scenario, args.sets)
    if args.calibration:
        from swarmplan.cli.validate import _load_calibration

        cal = _load_calibration(args.calibration)
        print(f"calibration from {args.calibration}", file=sys.stderr)
    else:
        t0 = time.monotonic()
        cal = calibrate(scenario_arch(sc, base, args.seed))
        print(f"calibrated in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    rows = []
    for method in args.methods.split(","):
        t0 = time.monotonic()
        v = run_validation(sc, base, method, args.requests, args.seed, "cpu", cal, prediction="step")
        s = v.summary()
        s["seconds"] = round(time.monotonic() - t0, 1)
        s["service_mape"] = service_mape(v.rows)
        rows.append(s)
        print(f"{method}: {s['seconds']:.0f} s", file=sys.stderr)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            v.rows.to_csv(args.out / f"{method}-requests.csv", index=False)
            bg = v.live.background
            (args.out / f"{method}-host_load.json").write_text(
                json.dumps({"times_ms": bg.times_ms, "demands": bg.demands, "weights": bg.weights})
            )
    total = time.monotonic() - t_all

    print(f"{args.scenario}, {args.requests} requests per method, seed {args.seed}, {os.cpu_count()} CPUs")
    print(f"rate {sc.workload.rate_per_s}/s; τ_cpu {cal.decode_cpu_block_ms:.2f} ms/block, wall τ {cal.decode_ms_per_block:.2f}")
    head = (
        "method    done  waited same-tokens |  step: resp  per-tok  TTFT  serv | paper: resp  per-tok  TTFT  serv"
        " | load  others  noise  secs"
    )
    print(head)
    for s in rows:
        st, pa, h = s["error_step_level"], s["error_paper_model"], s["host"]
        print(
            f"{s['method']:9s} {s['completed']:3d}/{s['requests']:<3d} {s['waited']:4d}  {str(s['tokens_identical']):11s} |"
            f"  {st['response_mape']:9.3f} {st['per_token_mape']:8.3f} {st['ttft_mape']:6.3f} {s['service_mape']['step']:5.3f} |"
            f"  {pa['response_mape']:9.3f} {pa['per_token_mape']:8.3f} {pa['ttft_mape']:6.3f} {s['service_mape']['paper']:5.3f} |"
            f" {h['load_average'][0]:5.2f} {h['other_runnable_mean']:6.2f} {s['host_noise']['cv']:6.3f} {s['seconds']:5.0f}"
        )
    print(f"total {total:.0f} s (MAPE as fractions; serv: service time = response − wait; 'others': other sessions' mean")
    print("runnable threads during the run; noise: CV of one request's forwards repeated as identical work after the")
    print("method's run, the host's own floor for per-request errors — runtime.host_noise)")
    if args.out:
        (args.out / "table.json").write_text(json.dumps({"methods": rows}, indent=2))


if __name__ == "__main__":
    main()
