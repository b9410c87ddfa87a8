"""Split-aware methods for ``compare`` (docs/split.md §6.1, §9): on a scenario with a ``split:`` section every
method sees the same requests with types and device classes, every method reports the split metrics, and
three more methods appear — ``split-dp`` and ``split-greedy`` for one server (the knapsack DP and greedy of
§5; the other methods are then all-on-server), ``split+gbp-cr`` for a swarm (the joint plan of §9).

Types and devices are drawn from a stream of their own, (seed, run, "split"), so the swarm draw, the
arrivals and the methods' streams are those of every other scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.workload import Workload
from swarmplan.sim.result import SimResult
from swarmplan.split.joint import plan_joint, swarm_for_blocks
from swarmplan.split.model import SplitModel, build_split_model, server_decode_batches
from swarmplan.split.plan import Requests, plan_window
from swarmplan.split.run import (
    RequestMix,
    swarm_result_with_clients,
    swarm_split_metrics,
    typed_workload,
)
from swarmplan.split.simulate import kv_units, simulate_split

SPLIT_METRICS = ("server_work_per_request_ms", "client_work_per_request_ms", "within_sla_fraction", "throughput_at_sla_per_s")
EDGE_METHODS = {"split-dp": "split-dp", "split-greedy": "greedy"}  # compare name → plan method
SWARM_METHODS = ("split+gbp-cr",)
DESCRIPTIONS = {
    "split-dp": "clients run a prefix/suffix of the blocks chosen by the knapsack DP under each SLA; one server "
    "runs the rest (docs/split.md §5)",
    "split-greedy": "as split-dp, each request offloading as much as its SLA and device budget allow, in "
    "arrival order (docs/split.md §5)",
    "split+gbp-cr": "clients run the first k blocks; GBP-CR + GCA + JFFC serve blocks k+1..L; k chosen jointly "
    "for the swarm's capacity under the SLA (docs/split.md §9)",
}


@dataclass(frozen=True)
class SplitMethod:
    """A name ``compare`` can carry beside the registry's methods."""

    name: str
    description: str
    default: bool = True


def is_split_method(name: str) -> bool:
    return name in EDGE_METHODS or name in SWARM_METHODS


def applicable(scenario: Scenario) -> list[str]:
    """The split methods a scenario can run: none without ``split:``; edge or swarm by its servers."""
    if scenario.split is None:
        return []
    swarm = scenario.split.server is None and not (isinstance(scenario.servers, list) and len(scenario.servers) == 1)
    return list(SWARM_METHODS) if swarm else list(EDGE_METHODS)


def resolve(scenario: Scenario, names: list[str] | None, get_methods) -> list:
    """The registry's methods for the other names (``get_methods``) and SplitMethods for the split ones, in the
    given order; with no names, the defaults plus the split methods the scenario can run."""
    if not names:
        return get_methods(None) + [SplitMethod(n, DESCRIPTIONS[n]) for n in applicable(scenario)]
    ok = applicable(scenario)
    for n in names:
        if is_split_method(n) and n not in ok:
            why = (
                "the scenario has no split: section"
                if scenario.split is None
                else f"{n} is for {'one server' if n in EDGE_METHODS else 'a swarm'}, this scenario is "
                f"{'a swarm' if ok == list(SWARM_METHODS) else 'one server'}"
            )
            raise SwarmplanError("--methods", f"{n} cannot run here: {why}", f"use {', '.join(ok) or 'a scenario with split:'}")
    others = [n for n in names if not is_split_method(n)]
    regular = iter(get_methods(others) if others else [])
    return [SplitMethod(n, DESCRIPTIONS[n]) if is_split_method(n) else next(regular) for n in names]


class SplitRun:
    """One Monte Carlo run's split side: the model, the typed workload, and the metrics of any result."""

    def __init__(self, scenario: Scenario, pm: PerfModel, workload: Workload, seed: int, run: int):
        self.scenario, self.pm = scenario, pm
        self.sm: SplitModel = build_split_model(scenario, pm)
        rng = np.random.default_rng(np.random.SeedSequence([seed, run, 0x5917]))
        self.workload, self.mix = typed_workload(self.sm, workload, rng)
        self.batch = server_decode_batches(scenario, pm)

    def metrics(self, result: SimResult) -> dict:
        """The split metrics of an ordinary method's run (its clients run nothing)."""
        out = swarm_split_metrics(self.pm, self.sm, result, self.mix, self.batch)
        return {k: out[k] for k in SPLIT_METRICS}

    @cached_property
    def joint(self):
        return plan_joint(self.pm, self.sm.types, self.sm.devices, self.batch)

    def run(self, name: str) -> dict:
        """A split method's summary: compare's metrics and the split metrics."""
        if name in EDGE_METHODS:
            return self._edge(name)
        opt = self.joint.best
        res, client = swarm_result_with_clients(self.pm, self.sm, opt, self.workload, self.mix, name)
        summary = res.summary()
        split = swarm_split_metrics(swarm_for_blocks(self.pm, opt.k), self.sm, res, self.mix, self.batch, client, opt.k)
        summary.update({k: split[k] for k in SPLIT_METRICS}, client_blocks=opt.k, c=opt.c)
        return summary

    def _edge(self, name: str) -> dict:
        wl, mix = self.workload, self.mix
        rate = self.scenario.workload.rate_per_s
        window = (
            wl.n * 1000.0 / rate
            if self.scenario.workload.arrivals == "poisson"
            else float(wl.arrival_ms.max() - wl.arrival_ms.min()) * wl.n / max(wl.n - 1, 1) or wl.n * 1000.0 / rate
        )
        req = Requests(wl.arrival_ms, mix.type_index, mix.device_class, mix.device_instance, window)
        plan = plan_window(self.sm, req)
        sim = simulate_split(self.sm, req, plan.results[EDGE_METHODS[name]].choices, name)
        return edge_summary(self.sm, req, mix, sim)


def edge_summary(sm: SplitModel, req: Requests, mix: RequestMix, sim) -> dict:
    """compare's metrics (docs/model.md §3.7) of a split-aware single-server run, plus the split metrics."""
    ok = np.isfinite(sim.response_ms)
    resp, ttft, wait = sim.response_ms[ok], sim.ttft_ms[ok], sim.wait_ms[ok]
    l_out = np.array([sm.types[t].output_tokens for t in mix.type_index])[ok]
    arrival, done = req.arrival_ms[ok], req.arrival_ms[ok] + resp
    conc = max((int(np.sum((arrival < a) & (done > a))) + 1 for a in arrival), default=0)
    need = sim.kv_units[ok]
    horizon = float(done.max() - req.arrival_ms.min()) if ok.any() else 0.0
    util = float(np.sum(need * (done - arrival - wait)) / (kv_units(sm) * horizon)) if horizon > 0 else 0.0
    s = sim.summary()
    pct = (lambda q: float(np.percentile(resp, q) / 1000)) if ok.any() else (lambda q: float("nan"))
    return {
        "per_token_s": float(np.mean(resp / l_out) / 1000),
        "ttft_s": float(ttft.mean() / 1000),
        "wait_s": float(wait.mean() / 1000),
        "service_s": float((resp - wait).mean() / 1000),
        "response_mean_s": float(resp.mean() / 1000),
        "response_p50_s": pct(50),
        "response_p95_s": pct(95),
        "response_p99_s": pct(99),
        "max_concurrency": conc,
        "mean_slot_utilisation": util,
        **{k: s[k] for k in SPLIT_METRICS},
        "requests": len(ok),
    }
