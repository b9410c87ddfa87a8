"""``swarmplan validate``: real servers vs the simulator on the same inputs (docs/runtime.md §6)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.errors import SwarmplanError


def _load_calibration(path: Path):
    from dataclasses import fields

    from swarmplan.runtime.calibrate import Calibration

    try:
        doc = json.loads(path.read_text())
        return Calibration(**{f.name: doc[f.name] for f in fields(Calibration) if f.name in doc})
    except (OSError, ValueError, TypeError) as exc:
        raise SwarmplanError(
            "--calibration", f"cannot read {path}: {exc}", "give the JSON that `swarmplan calibrate --json` printed"
        )


def validate(
    scenario: str = typer.Argument("validate-abvt", help="built-in name or YAML path"),
    method: str = typer.Option("cg-bprr", "--method", "-m", help="any simulator method (cg-bprr, petals, gbp-cr, …)"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1, help="requests to run (default: the scenario's)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="JSON from `swarmplan calibrate --json` (default: calibrate now, under the same machine load)"
    ),
    bandwidth: Optional[float] = typer.Option(
        None, "--bandwidth-mbit", min=0.001, help="emulated bandwidth of every link (Mbit/s; default: unlimited)"
    ),
    out: Path = typer.Option(
        Path("validate-out"), "--out", help="folder for requests.csv, summary.json, predicted_vs_measured.png, host_load.json"
    ),
    prediction: str = typer.Option(
        "auto",
        "--prediction",
        help="step (step-level simulator: one worker per server, shared CPU cores; docs/runtime.md §8) | paper "
        "(the paper's model) | auto (step on cpu, paper on cuda); the paper model's error is always reported",
    ),
    force: bool = typer.Option(False, "--force", help="overwrite existing files in --out"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)"),
) -> None:
    """Run the scenario's requests on real server processes and in the simulator; report per-request errors."""
    from swarmplan.runtime.model import check_device, require_runtime
    from swarmplan.scenario.loader import load_scenario

    require_runtime()
    sc, base = load_scenario(scenario, sets or [])
    names = ("requests.csv", "summary.json", "predicted_vs_measured.png", "host_load.json")
    paths = [out / n for n in names]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise SwarmplanError("--out", f"would overwrite {', '.join(existing)}", "choose another folder or pass --force")
    check_device(device)
    if prediction not in ("auto", "step", "paper"):
        raise SwarmplanError("--prediction", f"unknown prediction {prediction!r}", "use auto, step or paper")
    cal = _load_calibration(calibration) if calibration else None
    from swarmplan.runtime.validate import plot_validation, run_validation

    v = run_validation(
        sc,
        base,
        method,
        requests,
        seed,
        device,
        cal,
        bandwidth_mbit_s=bandwidth,
        prediction=prediction,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    summary = v.summary()
    out.mkdir(parents=True, exist_ok=True)
    v.rows.to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(summary, indent=2))
    plot_validation(v, paths[2])
    bg = v.live.background
    paths[3].write_text(
        json.dumps(
            {
                "times_ms": bg.times_ms,
                "other_sessions_runnable": bg.demands,
                "other_sessions_weight": bg.weights,
                "own_weight": bg.own_weight,
            }
            if bg
            else {}
        )
    )
    if as_json:
        print(json.dumps(summary))
        return
    e, m, p = summary["error"], summary["measured"], summary["predicted"]
    print(
        f"{summary['scenario']} · {method}: {summary['completed']}/{summary['requests']} completed, "
        f"{summary['lost']} lost, {summary['waited']} waited, tokens identical: {summary['tokens_identical']}"
    )
    paper = summary["error_paper_model"]
    print(f"  prediction: {summary['prediction']}-level" if summary["prediction"] == "step" else "  prediction: paper model")
    for k in ("response", "per_token", "ttft"):
        print(
            f"  {k:9s} measured {m[k]:9.1f} ms  predicted {p[k]:9.1f} ms  MAPE {e[k + '_mape'] * 100:5.1f} %"
            f"  (paper model {paper[k + '_mape'] * 100:5.1f} %)"
        )
    noise = summary.get("host_noise")
    if noise:
        print(
            f"  host noise: one request's forwards, identical work {noise['rounds']} times, vary with CV "
            f"{noise['cv'] * 100:.1f} %: the spread any prediction made before a run faces on single requests"
        )
    h = summary["host"]
    print(f"  host: {h['cores']} cores, load average {h['load_average'][0]}, other sessions' runnable {h['other_runnable_mean']}")
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
