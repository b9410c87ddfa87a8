import sys

import numpy as np
import pytest

from swarmplan.perf.model import PerfModel
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize


def perf_of(scenario: dict | str, seed: int = 0, overrides=None) -> PerfModel:
    """PerfModel of a built-in name or of a scenario given as a plain dict."""
    if isinstance(scenario, str):
        sc, base = load_scenario(scenario, overrides or [])
    else:
        sc, base = Scenario.model_validate(scenario), None
    return PerfModel.from_swarm(realize(sc, np.random.default_rng(seed), base))


def explicit_scenario(servers, rtts, n_blocks=6, block_gb=1.0, kv_bytes=1e6, cache_tokens=100, **extra):
    """A small explicit scenario: ``servers`` = [(gpu spec dict)], ``rtts`` = raw RTT to the one client (ms)."""
    gpus = {f"g{i}": spec for i, spec in enumerate(servers)}
    return {
        "name": "tiny",
        "model": {"n_blocks": n_blocks, "block_gb": block_gb, "kv_bytes_per_token_per_block": kv_bytes},
        "gpus": gpus,
        "servers": [{"name": f"s{i}", "gpu": f"g{i}", "rtt_ms": {"c": rtts[i]}} for i in range(len(servers))],
        "clients": [{"name": "c"}],
        "workload": {"input_tokens": 10, "output_tokens": cache_tokens - 10, **extra.pop("workload", {})},
        **extra,
    }


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run the ``swarmplan`` entry point; return (exit code, stdout, stderr)."""
    from swarmplan.cli.main import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["swarmplan", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def draw_spans(draw, max_servers: int):
    """For hypothesis composites: L blocks and n servers, each (server 0 always) holding a random contiguous
    span (start, count) or nothing — the random placements the chain kernels are checked on."""
    from hypothesis import strategies as st

    L = draw(st.integers(1, 7))
    n = draw(st.integers(1, max_servers))
    start = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    for j in range(n):
        if draw(st.booleans()) or j == 0:
            a = draw(st.integers(1, L))
            start[j], m[j] = a, draw(st.integers(1, L - a + 1))
    return L, n, start, m
