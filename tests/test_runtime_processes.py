"""Runtime with real server processes: failures re-route without changing tokens; children are always reaped;
bad input is one line and exit 2."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from swarmplan.errors import SwarmplanError  # noqa: E402
from swarmplan.perf.model import PerfModel  # noqa: E402
from swarmplan.placement.types import Placement  # noqa: E402
from swarmplan.routing.wsrr import WsRrRouter  # noqa: E402
from swarmplan.runtime.launch import ServerGroup, ServerSpec  # noqa: E402
from swarmplan.runtime.live_run import Outage, run_live  # noqa: E402
from swarmplan.runtime.model import LlamaArch, build_reference, preset_arch, reference_generate  # noqa: E402
from swarmplan.scenario.models import Scenario  # noqa: E402
from swarmplan.scenario.realize import realize  # noqa: E402
from swarmplan.scenario.workload import Workload  # noqa: E402

ARCH = preset_arch("llama-tiny", seed=1)
GPU = {"memory_gb": 0.001, "decode_ms_per_block": 0.5, "prefill_ms_per_token_per_block": 0.01, "prefill_ms_per_block": 0.5}


def tiny_scenario(rtts, n_requests=6) -> dict:
    return {
        "name": "tiny-runtime",
        "model": ARCH.model_spec(),
        "gpus": {"cpu": GPU},
        "servers": [{"name": f"s{i}", "gpu": "cpu", "rtt_ms": {"c": r}} for i, r in enumerate(rtts)],
        "clients": [{"name": "c"}],
        "timing": {
            "overhead_ms": 1.0,
            "input_overhead_per_token_ms": 0.0,
            "input_overhead_base_ms": 1.0,
            "initial_delay_ms": 0.0,
        },
        "workload": {"rate_per_s": 20.0, "n_requests": n_requests, "input_tokens": 6, "output_tokens": 8},
    }


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"  # a zombie is dead; only its exit status is left
    except FileNotFoundError:
        return True


def descendants_of(pid: int) -> list[int]:
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parent.items() if p in frontier]
        out += kids
        frontier = kids
    return out


def test_killing_one_of_three_servers_during_decode_loses_nothing():
    pm = PerfModel.from_swarm(realize(Scenario.model_validate(tiny_scenario([4.0, 6.0, 6.0])), np.random.default_rng(0)))
    # s0 holds the whole model (the fastest chain); s1 → s2 is the detour once s0 dies.
    pl = Placement("test", np.array([1, 1, 3]), np.array([4, 2, 2]), np.array([40, 40, 40]), "proposed")
    n = 4
    wl = Workload(np.array([0.0, 5.0, 10.0, 15.0]), np.full(n, 5), np.full(n, 16), np.zeros(n, dtype=int))
    prompts = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15], [16, 17, 18, 19, 20]]
    run = run_live(ARCH, pm, pl, WsRrRouter(pm, pl), wl, prompts, outages=[Outage(0, 40.0)])
    ref = build_reference(ARCH)
    assert not any(r.lost for r in run.records)
    assert sum(r.failures for r in run.records) >= 1  # the kill hit sessions mid-run …
    assert any(r.chains[0] == (0,) and r.chains[-1] == (1, 2) for r in run.records)  # … which moved to s1 → s2
    for rec in run.records:
        assert rec.tokens == reference_generate(ref, rec.prompt, 16)
    assert all(gone(p) for p in run.server_pids)
    # The kill as it happened: after its scheduled instant, and s0 never came back.
    (done,) = run.outages_done
    assert done.server == 0 and done.fail_ms >= 40.0 and done.return_ms is None
    # The warm-up measured every server's forwards in place: positive prefill and per-step decode CPU.
    assert set(run.server_forwards) == {0, 1, 2}
    assert all(l_in == 5 and pre > 0 and dec > 0 for l_in, pre, dec in run.server_forwards.values())


def test_a_restarted_server_is_warmed_up_and_serves_again():
    pm = PerfModel.from_swarm(realize(Scenario.model_validate(tiny_scenario([4.0, 6.0, 6.0])), np.random.default_rng(0)))
    pl = Placement("test", np.array([1, 1, 3]), np.array([4, 2, 2]), np.array([40, 40, 40]), "proposed")
    # s0 (the fastest chain) is down from 0 to 300 ms; the last request arrives long after it is back.
    wl = Workload(np.array([50.0, 2500.0]), np.full(2, 4), np.full(2, 6), np.zeros(2, dtype=int))
    prompts = [[1, 2, 3, 4], [5, 6, 7, 8]]
    run = run_live(ARCH, pm, pl, WsRrRouter(pm, pl), wl, prompts, outages=[Outage(0, 0.0, 300.0)])
    (done,) = run.outages_done
    # Back only once restarted and warmed up: after the scheduled 300 ms, before the last arrival.
    assert done.server == 0 and done.return_ms is not None and 300.0 < done.return_ms < 2500.0
    first, last = run.records
    assert first.chains[-1] == (1, 2) and last.chains == [(0,)]  # the detour while down, s0 again after
    ref = build_reference(ARCH)
    assert all(rec.tokens == reference_generate(ref, rec.prompt, 6) for rec in run.records)


def test_children_reaped_on_error():
    spec = ServerSpec(0, "s0", 1, 4, 8)
    pids = []
    with pytest.raises(RuntimeError, match="boom"):
        with ServerGroup(ARCH, [spec], b"k") as group:
            pids = group.pids
            assert not gone(pids[0])
            raise RuntimeError("boom")
    assert pids and all(gone(p) for p in pids)


def test_occupied_port_is_one_error_and_nothing_left():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    # multiprocessing's fork server and resource tracker are per-interpreter helpers that live until this
    # process exits (the Ctrl-C test checks that nothing outlives it); start them first so that only what
    # the failed start leaves behind is counted, whichever test ran before.
    from multiprocessing import forkserver, resource_tracker

    forkserver.ensure_running()
    resource_tracker.ensure_running()
    before = set(descendants_of(os.getpid()))
    try:
        with pytest.raises(SwarmplanError, match="cannot listen") as err:
            with ServerGroup(ARCH, [ServerSpec(0, "s0", 1, 4, 8, port=port)], b"k"):
                pass
        assert err.value.field == "--port"
    finally:
        sock.close()
    time.sleep(0.1)
    assert all(gone(p) for p in set(descendants_of(os.getpid())) - before)


def test_server_dying_at_start_is_one_error():
    broken = LlamaArch(n_layers=2, hidden=64, intermediate=-3, heads=4, kv_heads=4)
    with pytest.raises(SwarmplanError, match="did not start"):
        with ServerGroup(broken, [ServerSpec(0, "s0", 1, 2, 8)], b"k"):
            pass


@pytest.fixture
def tiny_files(tmp_path):
    from ruamel.yaml import YAML

    sc = tmp_path / "tiny.yaml"
    with sc.open("w") as fh:
        YAML().dump(tiny_scenario([3.0, 5.0]), fh)
    cal = tmp_path / "cal.json"
    cal.write_text(
        json.dumps(
            dict(
                device="cpu",
                arch=ARCH.to_dict(),
                rtt_ms=10.0,
                decode_ms_per_block=0.5,
                prefill_ms_per_token_per_block=0.01,
                prefill_ms_per_block=0.5,
                overhead_ms=1.0,
                input_overhead_per_token_ms=0.0,
                input_overhead_base_ms=1.0,
                client_ms_per_token=0.05,
                decode_cpu_call_ms=0.2,
                decode_cpu_block_ms=0.3,
                prefill_cpu_call_ms=0.3,
                prefill_cpu_call_token_ms=0.0,
                prefill_cpu_block_ms=0.4,
                prefill_cpu_block_token_ms=0.01,
                server_message_cpu_ms=0.2,
                client_message_cpu_ms=0.2,
                client_head_cpu_ms=0.05,
                client_embed_cpu_ms=0.02,
                wake_ms=0.5,
            )
        )
    )
    return sc, cal


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, "-m", "swarmplan.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        **kw,
    )


def test_validate_cli_json(tiny_files, tmp_path, run_cli):
    sc, cal = tiny_files
    code, out, err = run_cli(
        "validate",
        str(sc),
        "--method",
        "cg-bprr",
        "--requests",
        "4",
        "--calibration",
        str(cal),
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "cg-bprr" and doc["requests"] == 4 and doc["completed"] == 4 and doc["lost"] == 0
    assert doc["tokens_identical"] is True
    assert set(doc["error"]) >= {"response_mape", "per_token_mape", "ttft_mape"}
    assert all(0 <= v < 10 for v in doc["error"].values())
    assert doc["prediction"] == "step" and doc["error"] == doc["error_step_level"]  # a CPU run predicts step by step
    assert set(doc["error_paper_model"]) == set(doc["error"])  # … and reports the paper model's error beside it
    for name in ("requests.csv", "summary.json", "predicted_vs_measured.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    code, _, err = run_cli("validate", str(sc), "--calibration", str(cal), "--out", str(tmp_path / "out"))
    assert code == 2 and "would overwrite" in err and "Traceback" not in err


def _as_in_a_terminal() -> None:
    """Ctrl-C's default disposition in the child: a shell starts background jobs (`cmd &`, so also a test run
    launched that way) with SIGINT ignored, and the child would inherit that; a terminal's foreground job
    does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_no_process(tiny_files, tmp_path):
    sc, cal = tiny_files
    out = str(tmp_path / "o")
    proc = _cli("validate", str(sc), "--requests", "200", "--calibration", str(cal), "--out", out, preexec_fn=_as_in_a_terminal)
    deadline = time.monotonic() + 90
    line = ""
    while "running" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
    assert "running" in line
    kids = descendants_of(proc.pid)
    assert len(kids) >= 3  # the fork server and two servers
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=90)  # generous: a loaded CI machine
    assert proc.returncode != 0
    time.sleep(0.2)
    assert all(gone(p) for p in kids)
