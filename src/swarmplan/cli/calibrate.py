"""``swarmplan calibrate``: fit the paper's timing model on this machine and write a GPU-type entry (docs/runtime.md §5)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.errors import SwarmplanError


def calibrate(
    scenario: Optional[str] = typer.Argument(None, help="scenario whose model to calibrate (default: --model)"),
    model: str = typer.Option(
        "llama-small",
        "--model",
        help="runtime preset when no scenario is given: llama-tiny | llama-small | llama-medium | llama-large",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    rtt_ms: float = typer.Option(10.0, "--rtt-ms", min=0.0, help="emulated RTT of the measured link (ms)"),
    name: str = typer.Option("local-cpu", "--name", help="name of the GPU type to write"),
    memory_gb: float = typer.Option(
        0.1, "--memory-gb", min=0.0, help="memory the GPU type declares (the runtime emulates it with KV slots)"
    ),
    repeats: int = typer.Option(3, "--repeats", min=1, help="measurement rounds"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the YAML fragment (gpus + timing) here"),
    force: bool = typer.Option(False, "--force", help="overwrite --out"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)"),
) -> None:
    """Measure per-block decode/prefill time and per-hop overhead on a real server process; fit the paper's model."""
    from ruamel.yaml import YAML

    from swarmplan.runtime.model import check_device, check_fits_memory, preset_arch, require_runtime

    require_runtime()
    if out is not None and out.exists() and not force:
        raise SwarmplanError("--out", f"would overwrite {out}", "choose another path or pass --force")
    if scenario is not None:
        from swarmplan.runtime.validate import scenario_arch
        from swarmplan.scenario.loader import load_scenario

        sc, base = load_scenario(scenario, sets or [])
        arch = scenario_arch(sc, base)
    else:
        arch = preset_arch(model)
    check_device(device)
    check_fits_memory(arch, 2)
    from swarmplan.runtime.calibrate import calibrate as run

    print(f"calibrating {arch.n_layers}×{arch.hidden} LLaMA on {device} …", file=sys.stderr)
    cal = run(arch, device, rtt_ms=rtt_ms, repeats=repeats)
    fragment = {"gpus": {name: cal.gpu_entry(memory_gb)}, "timing": cal.timing_entry()}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as fh:
            fh.write(f"# swarmplan calibrate: {device}, {arch.n_layers} blocks × hidden {arch.hidden}, RTT {rtt_ms:g} ms\n")
            YAML().dump(fragment, fh)
    if as_json:
        print(json.dumps(cal.to_json() | {"scenario_fragment": fragment}))
        return
    y = YAML()
    y.dump(fragment, sys.stdout)
    print(
        f"CPU time (step-level prediction, docs/runtime.md §8.4): decode {cal.decode_cpu_call_ms:.3f} + "
        f"{cal.decode_cpu_block_ms:.3f}·n ms, message server {cal.server_message_cpu_ms:.3f} / client "
        f"{cal.client_message_cpu_ms:.3f} ms, client per token {cal.client_head_cpu_ms + cal.client_embed_cpu_ms:.3f} ms, "
        f"timer lateness {cal.wake_ms:.3f} ms",
        file=sys.stderr,
    )
    if out is not None:
        print(f"wrote {out}", file=sys.stderr)
