"""SLO-Pack's long-output limit under a mean per-token SLO (docs/capacity.md §5.5): the output length above
which a request keeps off the reserved chains, chosen by simulating the plan at its own rate.

Why by simulation: the limit trades two queueing effects a fluid LP cannot see — a long output on a fast
chain holds a place for many short ones (a loss system's blocking, which overflows short outputs to slow
chains at once), and long outputs sent elsewhere queue for the slower chains (cheap per token: a wait W
costs W/l_out) until those saturate. The candidates are quantiles of the request mix's output lengths and
"no limit"; each runs on the same stream, drawn from the plan's length samples by its own seeded generator
(independent of any stream the plan is later measured on); the least mean per-token time wins, judged on
the windows an SLO is judged on (sim.result.measured_windows: after the warm-up, and over the last quarter).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain
from swarmplan.routing.slopack import DispatchRule, reserved_chains
from swarmplan.scenario.workload import Workload, poisson_arrivals_ms
from swarmplan.sim.central import JffcDispatcher, simulate_central
from swarmplan.sim.result import TAIL_FRACTION, WARMUP_FRACTION, measured_windows

QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)  # candidate limits: output-length quantiles
REQUESTS = 4000  # requests per candidate run (~0.3 s each on trace-azure-code)
SEED = 20261201  # the tuning stream's seed: the same for every run, so the limit is a function of the plan


def tuning_workload(pm: PerfModel, samples: tuple, rate_per_s: float, n: int, rng: np.random.Generator) -> Workload:
    """A Poisson stream at ``rate_per_s`` whose (l_in, l_out) are drawn uniformly from ``samples``."""
    arrival = poisson_arrivals_ms(rate_per_s, n, rng)
    pick = rng.integers(0, len(samples), size=n)
    pairs = np.asarray(samples, dtype=np.int64)[pick]
    client = rng.integers(0, pm.swarm.n_clients, size=n) if pm.swarm.n_clients > 1 else np.zeros(n, np.int64)
    return Workload(arrival, pairs[:, 0], pairs[:, 1], client.astype(np.int64))


def candidate_limits(samples: tuple) -> list[float]:
    """Distinct output-length quantiles of the mix (QUANTILES), then ∞ (no limit)."""
    l_out = np.asarray([lo for _, lo in samples], dtype=float)
    return sorted({float(v) for v in np.quantile(l_out, QUANTILES, method="lower")}) + [math.inf]


def windowed_per_token_ms(per_token_ms: np.ndarray, arrival_ms: np.ndarray) -> float:
    """The worse mean per-token time of the requests after the warm-up and of those in the last quarter."""
    return max(float(per_token_ms[w].mean()) for w in measured_windows(arrival_ms, WARMUP_FRACTION, TAIL_FRACTION))


def limit_trials(
    pm: PerfModel, placement: Placement, chains: list[Chain], rule: DispatchRule, n: int = REQUESTS, seed: int = SEED
) -> dict[float, float]:
    """Every candidate limit → its windowed mean per-token time (ms) on the tuning stream."""
    workload = tuning_workload(pm, rule.samples, rule.rate_per_s, n, np.random.default_rng(seed))
    out = {}
    for theta in candidate_limits(rule.samples):
        trial = dataclasses.replace(rule, long_output_limit=None if math.isinf(theta) else theta)
        result = simulate_central(pm, placement, workload, JffcDispatcher(chains, trial))
        out[theta] = windowed_per_token_ms(result.per_token_ms, workload.arrival_ms)
    return out


def resolve_rule(pm: PerfModel, placement: Placement, chains: list[Chain], rule: DispatchRule | None):
    """The rule with an "auto" long-output limit replaced by the best candidate (None: no limit; ties go to
    the larger limit, the smaller change to JFFC); any other rule unchanged."""
    if rule is None or rule.long_output_limit != "auto":
        return rule
    if rule.rate_per_s is None or len(set(rule.samples)) < 2 or not any(reserved_chains(chains)):
        return dataclasses.replace(rule, long_output_limit=None)
    trials = limit_trials(pm, placement, chains, rule)
    best = min(trials, key=lambda theta: (trials[theta], -theta))
    return dataclasses.replace(rule, long_output_limit=None if math.isinf(best) else best)


def long_output_limit_of(policy) -> float | None:
    """The long-output limit a built policy dispatches with; None when it has none (or is not a central queue
    with SLO-Pack's rule)."""
    return getattr(getattr(policy, "rule", None), "long_output_limit", None)
