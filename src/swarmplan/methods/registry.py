"""Methods as data (docs/architecture.md "Methods as data"; docs/model.md §10): a method is a placement, a
routing/dispatch policy and a waiting model, named ``placement+policy[+waiting]`` — e.g. ``cg-bp+ws-rr``,
``petals+petals-route+retry``, ``gbp-cr+jffc``. The paper's and the follow-up's names are aliases, so every
earlier command and result is unchanged. The memory model comes with the placement.

Every method of one Monte Carlo run shares a MethodContext, so PETALS' random join order and the CG-BP
placement are drawn/computed once and reused by the variants that the paper derives from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from swarmplan.errors import SwarmplanError
from swarmplan.methods.policies import POLICIES, Waiting
from swarmplan.perf.model import PerfModel
from swarmplan.placement.context import PlanContext
from swarmplan.placement.milp import MilpOptions
from swarmplan.placement.petals_rejoin import rejoin_placement
from swarmplan.placement.registry import PLACEMENTS, Family, GbpCrOptions, placement_method
from swarmplan.placement.types import Placement
from swarmplan.routing.petals import CacheTest
from swarmplan.sim.retry import RetryingClient

Profile = Literal["fair", "paper"]
WAITING: dict[str, str] = {
    "book": "the paper's model: book slots at arrival, wait with PETALS-style back-off for that chain",
    "retry": "PETALS' real client: a session that does not fit fails, back off, route afresh",
    "queue": "a central FCFS queue that dispatches to chains (JFFC)",
}


@dataclass
class MethodContext(PlanContext):
    """A run's shared planning context plus the options of every placement and policy.

    ``overrides`` holds ``--option name.field=value`` settings (validated); the other fields are the
    defaults earlier versions took as arguments, kept so existing calls work unchanged.
    """

    cache_test: CacheTest = "petals"
    use_fast_path: bool = True
    c: int | None = None
    c_criterion: str = "lower"
    milp_time_limit_s: float = 30.0
    overrides: dict[str, dict] = field(default_factory=dict)

    def options_for(self, name: str):
        """Options of the named placement or policy: its defaults, the context's, then ``overrides``."""
        kind = PLACEMENTS[name].options if name in PLACEMENTS else POLICIES[name].options
        if kind is MilpOptions:
            base = MilpOptions(time_limit_s=self.milp_time_limit_s)
        elif kind is GbpCrOptions:
            base = GbpCrOptions(c=self.c, criterion=self.c_criterion)
        elif "cache_test" in kind.__dataclass_fields__:
            base = kind(cache_test=self.cache_test, fast_path=self.use_fast_path)
        elif "fast_path" in kind.__dataclass_fields__:
            base = kind(fast_path=self.use_fast_path)
        else:
            base = kind()
        return dataclasses.replace(base, **self.overrides.get(name, {}))

    @property
    def cgbp(self) -> Placement:
        return self.placement("cg-bp")

    @property
    def petals(self) -> Placement:
        return self.placement("petals", self.options_for("petals"))


@dataclass(frozen=True)
class Method:
    name: str
    placement: str
    policy: str
    waiting: Waiting
    description: str = ""
    default: bool = True  # part of `compare` when no --methods are given

    @property
    def family(self) -> Family:
        return PLACEMENTS[self.placement].family

    @property
    def spec(self) -> str:
        default_waiting = POLICIES[self.policy].waiting[0]
        return f"{self.placement}+{self.policy}" + ("" if self.waiting == default_waiting else f"+{self.waiting}")

    def policy_for(self, ctx: MethodContext, placement: Placement):
        policy = POLICIES[self.policy].build(ctx.pm, placement, ctx.options_for(self.policy))
        return RetryingClient(policy) if self.waiting == "retry" else policy

    def build(self, ctx: MethodContext):
        """(placement, policy object) for this run's context."""
        placement = ctx.placement(self.placement, ctx.options_for(self.placement))
        return placement, self.policy_for(ctx, placement)

    def rejoin_hook(self, ctx: MethodContext):
        """How a returning server re-chooses its blocks under churn (docs/model.md §16.1): PETALS' servers
        choose again; the proposed methods' servers come back with their placement (None)."""
        if self.family != "petals" or self.waiting == "queue":
            return None

        def rejoin(j: int, live: list[bool], current: Placement):
            moved = rejoin_placement(ctx.pm, current, j, live)
            return None if moved is None else (moved, self.policy_for(ctx, moved))

        return rejoin


ALIASES: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "petals",
            "petals",
            "petals-route",
            "book",
            "PETALS: its block count, lowest-throughput windows (random join order), min-latency routing, fixed attention cache",
        ),
        Method(
            "petals-retry",
            "petals",
            "petals-route",
            "retry",
            "PETALS as its real client behaves: a session "
            "that does not fit fails, the client backs off and re-routes (not in the paper's model)",
        ),
        Method("opt-order", "petals-cgbp-order", "petals-route", "book", "PETALS with CG-BP's join order"),
        Method(
            "opt-num", "petals-cgbp-num", "petals-route", "book", "PETALS with CG-BP's block counts and the proposed memory model"
        ),
        Method(
            "opt-rr", "petals", "opt-rr", "book", "PETALS' placement, each arrival on the chain minimising service + max wait"
        ),
        Method("cg-bprr", "cg-bp", "ws-rr", "book", "CG-BP placement + WS-RR routing (Sun et al. 2025)"),
        Method("gbp-cr", "gbp-cr", "jffc", "queue", "GBP-CR placement + GCA chains + JFFC central queue (Sun, He, Hou 2026)"),
        Method("cgbp-jffc", "cg-bp", "jffc", "queue", "CG-BP placement + GCA chains + JFFC central queue"),
        Method(
            "milp",
            "milp",
            "ws-rr",
            "book",
            "exact MILP placement for CG-BP's R (layered, warm-started) + WS-RR routing",
            default=False,
        ),
        Method(
            "helix",
            "helix",
            "helix-iwrr",
            "book",
            "Helix (ASPLOS '25): MILP placement maximising session "
            "throughput (HiGHS, warm-started) + max-flow and interleaved weighted round-robin per hop",
            default=False,
        ),
        Method(
            "parallax",
            "parallax",
            "parallax-dp",
            "book",
            "Parallax (GradientHQ): pipelines maximising "
            "k²/stages, water-filled layers, per-request min-latency DP over free nodes",
            default=False,
        ),
        Method(
            "slo-pack",
            "slo-pack",
            "jffc",
            "queue",
            "SLO-Pack (ours): the capacity bound's LP rounded, or a "
            "GBP-CR design, chosen per rate; JFFC over the chains that can meet the SLO",
        ),
    ]
}
METHODS = ALIASES  # earlier name of the alias table


def parse_method(text: str) -> Method:
    """An alias, or ``placement+policy[+waiting]`` (docs/architecture.md "Methods as data")."""
    text = text.strip()
    if text in ALIASES:
        return ALIASES[text]
    parts = text.split("+")
    fix = (
        f"use an alias ({', '.join(ALIASES)}) or placement+policy[+waiting] with a placement of "
        f"{', '.join(PLACEMENTS)}, a policy of {', '.join(POLICIES)} and a waiting model of {', '.join(WAITING)}"
    )
    if len(parts) not in (2, 3) or parts[0] not in PLACEMENTS or parts[1] not in POLICIES:
        raise SwarmplanError("--methods", f"unknown method {text!r}", fix)
    policy = POLICIES[parts[1]]
    waiting = parts[2] if len(parts) == 3 else policy.waiting[0]
    if waiting not in policy.waiting:
        raise SwarmplanError(
            "--methods",
            f"{text!r}: policy {policy.name} runs under {' or '.join(policy.waiting)}, not {waiting!r}",
            f"use {parts[0]}+{parts[1]}+{policy.waiting[0]}",
        )
    return Method(text, parts[0], parts[1], waiting, f"{placement_method(parts[0]).description}; {policy.description}")


def allocation_delay_ms(method: Method, profile: Profile, pm: PerfModel) -> float:
    """docs/model.md §10 — 'paper': 60 s for the proposed method, 250 s for PETALS-based ones; 'fair': one value."""
    t = pm.swarm.timing
    if profile == "fair":
        return t.fair_allocation_delay_ms
    return t.paper_allocation_delay_proposed_ms if method.family == "proposed" else t.paper_allocation_delay_petals_ms


def get_methods(names: list[str] | None) -> list[Method]:
    if not names:
        return [m for m in ALIASES.values() if m.default]
    methods = [parse_method(n) for n in names]
    seen = [m.name for m in methods]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise SwarmplanError("--methods", f"{', '.join(dup)} named twice", "name each method once")
    return methods
