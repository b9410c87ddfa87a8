"""What ``swarmplan plan`` does, as a function: one placement of a scenario draw, with its quality."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmplan.methods.quality import Quality, placement_quality
from swarmplan.methods.registry import MethodContext, parse_method
from swarmplan.perf.model import PerfModel
from swarmplan.placement.registry import PLACEMENTS
from swarmplan.placement.types import Placement
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize


@dataclass(frozen=True)
class PlanResult:
    pm: PerfModel
    placement: Placement
    quality: Quality | None


def plan_placement(
    scenario: Scenario,
    base_dir: Path | None,
    method: str,
    R: int | None,
    swarm_rng: np.random.Generator,
    method_rng: np.random.Generator,
    overrides: dict[str, dict] | None = None,
    with_quality: bool = True,
) -> PlanResult:
    """Place ``method`` (a placement name, or a method whose placement is meant) on one draw of the scenario.

    ``overrides`` are ``--option`` settings (``methods.options.parse_options``)."""
    name = method if method in PLACEMENTS else parse_method(method).placement
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    overrides.setdefault("petals", {}).setdefault("balance_quality", scenario.placement.petals_balance_quality)
    pm = PerfModel.from_swarm(realize(scenario, swarm_rng, base_dir))
    ctx = MethodContext(pm, method_rng, scenario.workload.rate_per_s, R, milp_time_limit_s=60.0, overrides=overrides)
    pl = ctx.placement(name, ctx.options_for(name))
    q = None
    if with_quality:
        q = placement_quality(pm, pl, pl.R if pl.R is not None else ctx.target[0])
    return PlanResult(pm, pl, q)
