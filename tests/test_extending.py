"""docs/extending.md recipe 1 runs as written: its placement registers, takes its two options through
--option, and places by hand-computed rules on a tiny swarm; every command then accepts it."""

import re
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.errors import NoSolutionError
from swarmplan.methods.options import parse_options
from swarmplan.methods.registry import MethodContext, allocation_delay_ms, parse_method
from swarmplan.placement.registry import PLACEMENTS
from swarmplan.scenario.workload import Workload
from swarmplan.sim.run import run_policy

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture
def fastest_first():
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    module = types.ModuleType("fastest_first_example")
    exec(compile(code, str(DOC), "exec"), module.__dict__)
    yield module
    PLACEMENTS.pop("fastest-first", None)


def pm_of():
    # Blocks of 1 GB, s_c = 0.1 GB; with sessions = 4 a server holds ⌊M / 1.4⌋ blocks.
    gpus = [
        {"memory_gb": mem, "decode_ms_per_block": tau, "prefill_ms_per_block": 5.0, "prefill_ms_per_token_per_block": 0.0}
        for mem, tau in ((6.0, 2.0), (3.0, 1.0), (9.0, 3.0))
    ]
    return perf_of(explicit_scenario(gpus, [10, 20, 30], n_blocks=6))


def test_the_documented_placement_places_by_its_rule(fastest_first):
    pm = pm_of()
    ctx = MethodContext(pm, np.random.default_rng(0), 0.5, overrides=parse_options(["fastest-first.copies=1"]))
    pl = ctx.placement("fastest-first", ctx.options_for("fastest-first"))
    # Fastest first: s1 (τ = 1) fits ⌊3/1.4⌋ = 2 blocks → 1–2; s0 (τ = 2) fits 4 → 3–6; s2 is not needed.
    assert pl.start.tolist() == [3, 1, 0] and pl.n_blocks.tolist() == [4, 2, 0]
    two = MethodContext(pm, np.random.default_rng(0), 0.5, overrides=parse_options(["fastest-first.copies=2"]))
    pl2 = two.placement("fastest-first", two.options_for("fastest-first"))
    assert (pl2.coverage(6) == 2).all()  # s2 fits all 6 blocks: the second copy
    assert pl2.n_blocks.tolist() == [4, 2, 6]
    bad = MethodContext(pm, np.random.default_rng(0), 0.5, overrides=parse_options(["fastest-first.copies=3"]))
    with pytest.raises(NoSolutionError):
        bad.placement("fastest-first", bad.options_for("fastest-first"))


def test_the_documented_placement_runs_with_any_policy(fastest_first):
    pm = pm_of()
    wl = Workload(np.arange(20) * 300.0, np.full(20, 10), np.full(20, 40), np.zeros(20, dtype=np.int64))
    for spec in ("fastest-first+ws-rr", "fastest-first+petals-route+retry", "fastest-first+jffc"):
        method = parse_method(spec)
        pl, policy = method.build(MethodContext(pm, np.random.default_rng(0), 0.5))
        res = run_policy(pm, pl, wl, policy, allocation_delay_ms(method, "paper", pm), method.name)
        assert all(sum(b) == 6 for b in res.processed) and res.summary()["requests"] == 20
