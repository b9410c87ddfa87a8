"""Routing/dispatch policies as data (docs/architecture.md "Methods as data"): each is a name, the waiting
models it runs under, a typed options dataclass and a builder from a placement.

Adding a policy is one module with its class and one ``register_policy`` call (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from swarmplan.perf import memory
from swarmplan.perf.model import PerfModel
from swarmplan.placement.gbpcr import whole_request_times
from swarmplan.placement.gbpcr_plan import ChainPlan
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain, gca
from swarmplan.routing.optrr import OptRrRouter
from swarmplan.routing.petals import PetalsRouter
from swarmplan.routing.wsrr import WsRrRouter
from swarmplan.sim.central import JffcDispatcher
from swarmplan.sim.long_outputs import resolve_rule

Waiting = Literal["book", "retry", "queue"]


@dataclass(frozen=True)
class RouterOptions:
    fast_path: bool = True  # reuse the cached no-wait optimum while its servers have room (same decisions)


@dataclass(frozen=True)
class PetalsRouteOptions:
    cache_test: Literal["petals", "authors"] = "petals"  # PETALS' real test, or the authors' simulator (§4.5)
    fast_path: bool = True


@dataclass(frozen=True)
class NoPolicyOptions:
    """A policy without options."""


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    waiting: tuple[Waiting, ...]  # waiting models it runs under; the first is its default
    options: type
    build: Callable[[PerfModel, Placement, Any], Any]


POLICIES: dict[str, Policy] = {}


def register_policy(policy: Policy) -> Policy:
    POLICIES[policy.name] = policy
    return policy


def session_capacity(pm: PerfModel, placement: Placement) -> np.ndarray:
    """Sessions a server admits under the authors' cache test: PETALS ⌊B_cache/s_c⌋, the proposed memory
    model ⌊(M − s_m m)/(s_c m)⌋ (docs/model.md §2.3–2.4)."""
    if placement.memory_model == "petals":
        return np.full(pm.n_servers, memory.session_capacity_petals(pm.petals_cache_gb, pm.kv_gb))
    return memory.session_capacity_proposed(pm.memory_gb, placement.n_blocks, pm.block_gb, pm.kv_gb)


def _helix(pm, pl):
    from swarmplan.routing.helix import HelixRouter

    return HelixRouter(pm, pl)


def _parallax(pm, pl, fast_path):
    from swarmplan.routing.parallax import ParallaxRouter

    return ParallaxRouter(pm, pl, fast_path)


def chains_for(pm: PerfModel, placement: Placement) -> list[Chain]:
    """GCA's chains on a placement (docs/model.md §14.2); the placement's own when it carries them (GBP-CR's
    ChainPlan, SLO-Pack's plan)."""
    if isinstance(placement.details, ChainPlan) or hasattr(placement.details, "chains"):
        return placement.details.chains
    tau_c, tau_p = whole_request_times(pm)
    return gca(placement, pm.L, tau_c, tau_p)


def _jffc(pm: PerfModel, pl: Placement) -> JffcDispatcher:
    """JFFC over the placement's chains, with SLO-Pack's length-aware rule when its plan has one (its
    long-output limit chosen at the plan's rate when "auto", docs/capacity.md §5.5)."""
    chains = chains_for(pm, pl)
    return JffcDispatcher(chains, resolve_rule(pm, pl, chains, getattr(pl.details, "dispatch_rule", None)))


for _p in (
    Policy(
        "ws-rr",
        "waiting-penalised shortest chain per arrival (Sun et al. 2025, §8.1)",
        ("book", "retry"),
        RouterOptions,
        lambda pm, pl, o: WsRrRouter(pm, pl, o.fast_path),
    ),
    Policy(
        "petals-route",
        "PETALS' min-latency Dijkstra with its 10 s cache penalty (petals.md §7.2)",
        ("book", "retry"),
        PetalsRouteOptions,
        lambda pm, pl, o: PetalsRouter(pm, pl, o.cache_test, session_capacity(pm, pl), o.fast_path),
    ),
    Policy(
        "opt-rr",
        "the chain minimising service + max wait per arrival (BPRR §8.4)",
        ("book", "retry"),
        RouterOptions,
        lambda pm, pl, o: OptRrRouter(pm, pl, o.fast_path),
    ),
    Policy(
        "jffc",
        "GCA chains, join-the-fastest-free-chain from a central queue (Sun, He, Hou 2026)",
        ("queue",),
        NoPolicyOptions,
        lambda pm, pl, o: _jffc(pm, pl),
    ),
    Policy(
        "helix-iwrr",
        "Helix: max-flow over strict pipelines, interleaved weighted round-robin per hop (docs/capacity.md §3.2)",
        ("book", "retry"),
        NoPolicyOptions,
        lambda pm, pl, o: _helix(pm, pl),
    ),
    Policy(
        "parallax-dp",
        "Parallax: per-request min-latency DP over nodes with room (docs/capacity.md §4.2)",
        ("book", "retry"),
        RouterOptions,
        lambda pm, pl, o: _parallax(pm, pl, o.fast_path),
    ),
):
    register_policy(_p)
