"""Capacity under a latency SLO: the highest Poisson rate at which each method keeps its promise
(docs/capacity.md §1), next to the provable upper bound (docs/capacity.md §2).

Per Monte Carlo run (one swarm draw) and method: bracket the rate by doubling/halving from a start, then
bisect (geometrically) until the bracket is within ``rel_tol``. Every evaluation simulates the method built
for that rate (placements depend on the rate) on one arrival stream whose requests grow with the rate
(n = max(n_min, ⌈λ·horizon⌉)), so an overloaded swarm's queue keeps growing with the rate instead of being
capped by a fixed request count. Arrival streams at different rates are one unit-rate stream rescaled
(common random numbers), which keeps the SLO test close to monotone in the rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.capacity_fluid import placement_fluid_per_s
from swarmplan.methods.registry import (
    MethodContext,
    Profile,
    allocation_delay_ms,
    get_methods,
)
from swarmplan.perf.capacity_bound import (
    Slo,
    capacity_upper_bound,
    length_classes,
    single_request_metric_ms,
)
from swarmplan.perf.model import PerfModel
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import Workload, load_trace
from swarmplan.sim.long_outputs import long_output_limit_of
from swarmplan.sim.result import TAIL_FRACTION, WARMUP_FRACTION, SimResult, measured_windows
from swarmplan.sim.run import run_policy

_SLO = re.compile(r"^\s*(per[_-]?token|ttft|p(\d{1,2}(?:\.\d+)?))\s*(?:<=|≤|=|:)\s*([0-9.eE+-]+)\s*(x|s)?\s*$")


@dataclass(frozen=True)
class SloSpec:
    """An SLO as the user wrote it: kind, value and whether it is a factor of the single-request bound."""

    kind: str  # per_token | ttft | response
    value: float
    relative: bool
    quantile: float = 0.95
    text: str = ""

    def resolve(self, pm: PerfModel, delay_ms: float, lengths: tuple | None = None) -> Slo:
        """The absolute limit for one swarm: a factor × the single-request bound (docs/capacity.md §1.1)."""
        if not self.relative:
            return Slo(self.kind, self.value * 1000.0, self.quantile)
        base = single_request_metric_ms(pm, Slo(self.kind, 0.0, self.quantile), None, delay_ms, lengths)
        return Slo(self.kind, self.value * base, self.quantile)


def parse_slo(text: str) -> SloSpec:
    """``per_token<=1.2x`` (a factor of the single-request bound), ``per_token<=0.6`` (seconds),
    ``p95<=90`` (response-time quantile, s), ``ttft<=3`` or ``ttft<=1.5x`` (mean TTFT)."""
    m = _SLO.match(text or "")
    if not m:
        raise SwarmplanError(
            "--slo",
            f"cannot read {text!r}",
            "write per_token<=1.2x, per_token<=0.6, p95<=90 or ttft<=3 (seconds; 'x' = × the single-request bound)",
        )
    head, pct, value, unit = m.groups()
    try:
        v = float(value)
    except ValueError:
        raise SwarmplanError("--slo", f"{value!r} is not a number", "give a positive number") from None
    if not v > 0:
        raise SwarmplanError("--slo", f"the limit {v:g} is not positive", "give a positive number")
    if pct is not None:
        q = float(pct) / 100.0
        if not 0 < q < 1:
            raise SwarmplanError("--slo", f"p{pct} is not a percentile in (0, 100)", "use e.g. p95")
        return SloSpec("response", v, unit == "x", q, text.strip())
    kind = "ttft" if head == "ttft" else "per_token"
    if unit == "x" and v < 1:
        raise SwarmplanError("--slo", f"a factor {v:g} < 1 of the single-request bound can never hold", "use ≥ 1")
    return SloSpec(kind, v, unit == "x", 0.95, text.strip())


def measure(result: SimResult, slo: Slo, warmup_fraction: float = 0.0, tail_fraction: float = TAIL_FRACTION) -> float:
    """The SLO's metric of one run, in ms: the worse of the requests arriving after the first
    ``warmup_fraction`` of the arrival span (an empty swarm at the start flatters every method) and of those
    in its last ``tail_fraction`` (a queue that keeps growing fails there even when the average over the run
    hides it: the SLO must hold in steady state; docs/capacity.md §1.2)."""

    def metric(keep):
        if slo.kind == "per_token":
            return float(result.per_token_ms[keep].mean())
        if slo.kind == "ttft":
            return float(result.ttft_ms[keep].mean())
        return float(np.quantile(result.response_ms[keep], slo.quantile))

    return max(metric(keep) for keep in measured_windows(result.workload.arrival_ms, warmup_fraction, tail_fraction))


@dataclass
class UnitStream:
    """A unit-rate Poisson stream with its lengths; ``at(rate, n)`` rescales its first n requests.
    Each component has its own generator, so prefixes do not depend on n (docs/capacity.md §1.2)."""

    gaps: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    client: np.ndarray
    factor: np.ndarray | None

    @classmethod
    def draw(cls, scenario: Scenario, n_clients: int, seed: int, run: int, n: int, base_dir: Path | None):
        spec = scenario.workload
        g_gap, g_rows, g_client, g_factor = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, run, 7]).spawn(4))
        gaps = g_gap.exponential(1000.0, size=n)
        gaps[0] = 0.0
        if spec.lengths == "trace":
            tr = load_trace(spec.trace, base_dir)
            rows = g_rows.integers(0, len(tr.input_tokens), size=n)
            l_in, l_out = tr.input_tokens[rows], tr.output_tokens[rows]
        else:
            l_in, l_out = np.full(n, spec.input_tokens), np.full(n, spec.output_tokens)
        client = g_client.integers(0, n_clients, size=n) if n_clients > 1 else np.zeros(n, dtype=np.int64)
        factor = g_factor.exponential(1.0, size=n) if spec.service == "exponential" else None
        return cls(gaps, l_in.astype(np.int64), l_out.astype(np.int64), client.astype(np.int64), factor)

    def at(self, rate_per_s: float, n: int) -> Workload:
        if n > len(self.gaps):
            raise ValueError("stream too short")
        f = None if self.factor is None else self.factor[:n]
        return Workload(np.cumsum(self.gaps[:n]) / rate_per_s, self.input_tokens[:n], self.output_tokens[:n], self.client[:n], f)


def _measured_span(result: SimResult, warmup_fraction: float):
    """Arrivals, completions, the measured span [t_w, t_end] of the arrivals and how many arrived in it."""
    arr, done = result.workload.arrival_ms, result.completion_ms
    t_w, t_end = warmup_fraction * arr[-1], arr[-1]
    return arr, done, t_w, t_end, int(np.count_nonzero((arr >= t_w) & (arr <= t_end)))


def backlog_growth(result: SimResult, warmup_fraction: float = 0.0) -> float:
    """How much the number of requests in the system grew over the measured part of the arrival span, as a
    share of the requests that arrived in it: (N(t_end) − N(t_w)) / arrivals in [t_w, t_end]. In steady state
    it is ~0; an overload ε makes it ~ε/(1 + ε) (docs/capacity.md §1.2)."""
    arr, done, t_w, t_end, arrived = _measured_span(result, warmup_fraction)
    in_system_w = int(np.count_nonzero(arr <= t_w)) - int(np.count_nonzero(done <= t_w))
    in_system_end = int(np.count_nonzero(arr <= t_end)) - int(np.count_nonzero(done <= t_end))
    return (in_system_end - in_system_w) / max(arrived, 1)


def backlog_noise(result: SimResult, warmup_fraction: float = 0.0, z: float = 3.0) -> float:
    """The growth a stable swarm can show by chance, on backlog_growth's scale: z standard deviations of the
    difference of two samples of the number in system N, taking N's variance equal to its mean (Poisson, as
    for infinitely many places by Palm's theorem), so z·√(2 N̄) / arrivals, N̄ the time-average of N over the
    measured span (docs/capacity.md §1.2)."""
    arr, done, t_w, t_end, arrived = _measured_span(result, warmup_fraction)
    overlap = np.clip(np.minimum(np.nan_to_num(done, nan=t_end), t_end) - np.maximum(arr, t_w), 0.0, None)
    mean_in_system = float(overlap.sum()) / max(t_end - t_w, 1e-9)
    return z * float(np.sqrt(2.0 * mean_in_system)) / max(arrived, 1)


@dataclass(frozen=True)
class SearchOptions:
    """horizon: arrivals span ``horizon_services`` × the fastest single-request service time (at least
    ``min_horizon_s``) at every rate, or ``horizon_s`` if given; the first ``warmup_fraction`` of it is
    simulated but not measured."""

    horizon_s: float | None = None
    horizon_services: float = 20.0
    min_horizon_s: float = 60.0
    warmup_fraction: float = WARMUP_FRACTION
    min_requests: int = 200
    rel_tol: float = 0.03  # stop when hi/lo − 1 ≤ rel_tol
    max_steps: int = 24
    profile: Profile = "fair"
    cache_test: str = "petals"
    length_bins: int = 6  # quantile boxes per length axis for the bound's classes (docs/capacity.md §2.3)
    length_bins_out: int | None = None  # boxes along l_out if not length_bins (l_out matters most, §2.3)
    length_moments: bool = True  # hold every routing to each box's mean lengths (tighter bound, §2.6)
    slo_pack_dispatch: str | None = None  # SLO-Pack's dispatch option ("jffc", "slo-aware"); None: its default

    def horizon_for(self, fastest_service_ms: float) -> float:
        if self.horizon_s is not None:
            return self.horizon_s
        return max(self.min_horizon_s, self.horizon_services * fastest_service_ms / 1000.0)

    def requests_at(self, rate_per_s: float, horizon_s: float) -> int:
        return max(self.min_requests, int(math.ceil(rate_per_s * horizon_s)))


@dataclass
class MethodSearch:
    """One method on one swarm draw: the bracket [lo, hi] (req/s) and what was seen at each rate tried."""

    lo: float
    hi: float
    trials: list[dict] = field(default_factory=list)  # rate_per_s, metric_s, holds, diagnostics
    fluid_per_s: float | None = None  # fluid rate of its placement built at lo (docs/capacity.md §6)
    design: str = ""  # what the placement at lo was (e.g. SLO-Pack's chosen candidate)

    def at(self, rate: float) -> dict | None:
        for t in self.trials:
            if t["rate_per_s"] == rate:
                return t
        return None

    def stopped_by(self) -> str:
        """What failed at the rate just above capacity: "slo" (the metric broke the limit, whatever the
        backlog did), "backlog" (the metric held but the swarm did not keep up, §1.2), "ceiling" (held up to
        the search's cap) or "" (no trial above it)."""
        above = self.at(self.hi) if self.hi > self.lo else None
        if above is None:
            return "ceiling" if self.lo > 0 and self.hi == self.lo else ""
        return "backlog" if above.get("slo_holds", False) and not above.get("keeps_up", True) else "slo"


def _diagnostics(result: SimResult) -> dict:
    s = result.summary()
    return {k: s[k] for k in ("per_token_s", "wait_s", "service_s", "ttft_s", "response_p95_s", "mean_slot_utilisation")}


def search_method(
    evaluate: Callable[[float], tuple[float, dict]], limit_ms: float, start: float, ceiling: float, opts: SearchOptions
) -> MethodSearch:
    """Bracket then bisect the rate at which ``evaluate(rate) → (metric_ms, diagnostics)`` meets ``limit_ms``.
    ``ceiling`` caps the search (a rate above the provable bound is reported as the ceiling's bracket)."""
    trials: list[dict] = []

    def holds(rate: float) -> bool:
        metric, diag = evaluate(rate)
        ok = metric <= limit_ms and diag.get("keeps_up", True)
        trials.append({"rate_per_s": rate, "metric_s": metric / 1000.0, "holds": ok, "slo_holds": metric <= limit_ms, **diag})
        return ok

    floor = start * 2.0**-10
    lo, hi, steps = 0.0, math.inf, 0
    rate = start
    while steps < opts.max_steps:
        steps += 1
        if holds(rate):
            lo = rate
            if rate >= ceiling:
                hi = rate
                break
            rate = min(rate * 2.0, ceiling) if math.isinf(hi) else math.sqrt(lo * hi)
        else:
            hi = rate
            if lo == 0.0:
                if rate <= floor:
                    break
                rate = rate / 2.0
                continue
            rate = math.sqrt(lo * hi)
        if lo > 0 and math.isfinite(hi) and hi / lo - 1.0 <= opts.rel_tol:
            break
    return MethodSearch(lo, hi if math.isfinite(hi) else lo, trials)


@dataclass
class CapacityResult:
    scenario: str
    slo: SloSpec
    runs: int
    seed: int
    options: SearchOptions
    methods: list[str]
    limits_ms: list[float] = field(default_factory=list)  # the SLO's absolute limit per run
    bounds: list[dict] = field(default_factory=list)  # per run: rate_per_s, lp_rate_per_s, certified
    searches: dict[str, list[MethodSearch]] = field(default_factory=dict)

    def capacity(self, name: str) -> tuple[float, tuple[float, float]]:
        """Mean of the runs' highest rates that held, and a 95 % interval: Student-t over runs, widened by the
        bisection brackets (docs/capacity.md §1.3)."""
        lo = np.array([s.lo for s in self.searches[name]])
        hi = np.array([s.hi for s in self.searches[name]])
        return float(lo.mean()), _interval(lo, hi)

    def bound(self) -> tuple[float, tuple[float, float]]:
        b = np.array([x["rate_per_s"] for x in self.bounds])
        return float(b.mean()), _interval(b, b)

    def ratio(self, name: str) -> float:
        """Mean over runs of capacity / bound (runs with a zero bound are skipped)."""
        r = [s.lo / b["rate_per_s"] for s, b in zip(self.searches[name], self.bounds) if b["rate_per_s"] > 0]
        return float(np.mean(r)) if r else float("nan")

    def to_json(self) -> dict:
        ub, ub_ci = self.bound()
        return {
            "scenario": self.scenario,
            "slo": {
                "text": self.slo.text,
                "kind": self.slo.kind,
                "value": self.slo.value,
                "relative_to_single_request": self.slo.relative,
                **({"quantile": self.slo.quantile} if self.slo.kind == "response" else {}),
                "limit_s_per_run": [x / 1000.0 for x in self.limits_ms],
            },
            "runs": self.runs,
            "seed": self.seed,
            "profile": self.options.profile,
            "horizon_services": self.options.horizon_services,
            "warmup_fraction": self.options.warmup_fraction,
            "min_requests": self.options.min_requests,
            "rel_tol": self.options.rel_tol,
            "length_bins": self.options.length_bins,
            "length_bins_out": self.options.length_bins_out or self.options.length_bins,
            "upper_bound_per_s": ub,
            "upper_bound_ci_per_s": list(ub_ci),
            "upper_bound_per_run": self.bounds,
            "methods": {
                name: {
                    "capacity_per_s": self.capacity(name)[0],
                    "ci_per_s": list(self.capacity(name)[1]),
                    "fraction_of_bound": self.ratio(name),
                    "per_run": [
                        {
                            "lo_per_s": s.lo,
                            "hi_per_s": s.hi,
                            "placement_fluid_per_s": s.fluid_per_s,
                            "design": s.design,
                            "at_capacity": s.at(s.lo),
                            "above_capacity": s.at(s.hi) if s.hi != s.lo else None,
                            "trials": s.trials,
                        }
                        for s in self.searches[name]
                    ],
                }
                for name in self.methods
            },
        }


def _interval(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    n = len(lo)
    if n < 2:
        return float(lo.mean()), float(hi.mean())
    t = stats.t.ppf(0.975, n - 1)
    return (float(max(0.0, lo.mean() - t * lo.std(ddof=1) / math.sqrt(n))), float(hi.mean() + t * hi.std(ddof=1) / math.sqrt(n)))


def length_samples(pairs: tuple | None, count: int = 1000) -> tuple:
    """``count`` evenly spaced (l_in, l_out) entries of a length distribution (() for fixed lengths): what
    SLO-Pack's disjoint-chain design averages its chain times over (docs/capacity.md §5.2)."""
    if pairs is None:
        return ()
    li, lo = np.asarray(pairs[0]), np.asarray(pairs[1])
    idx = np.unique(np.linspace(0, len(li) - 1, min(count, len(li))).astype(int))
    return tuple(zip(li[idx].tolist(), lo[idx].tolist()))


def slo_pack_options(slo: Slo, dispatch: str | None = None) -> dict:
    """SLO-Pack plans for the SLO being searched (its typed options, as ``--option slo-pack.…`` would set)."""
    out = {"kind": slo.kind, "limit_s": slo.limit_ms / 1000.0, "quantile": slo.quantile, "samples": slo.samples}
    return out if dispatch is None else {**out, "dispatch": dispatch}


def run_capacity(
    scenario: Scenario, method_names: list[str], slo: SloSpec, run: int, seed: int, opts: SearchOptions, base_dir: Path | None
) -> tuple[float, dict, dict[str, MethodSearch]]:
    """One swarm draw: its SLO limit, its upper bound and every method's search."""
    from swarmplan.experiments.compare import run_seeds

    swarm_rng = run_seeds(seed, run)[0]
    pm = PerfModel.from_swarm(realize(scenario, swarm_rng, base_dir))
    spec = scenario.workload
    lengths = load_trace(spec.trace, base_dir) if spec.lengths == "trace" else None
    classes = length_classes(
        pm,
        *((lengths.input_tokens, lengths.output_tokens) if lengths else (None, None)),
        bins=opts.length_bins,
        bins_out=opts.length_bins_out,
        moments=opts.length_moments,
    )
    delay = pm.swarm.timing.initial_delay_ms + (pm.swarm.timing.fair_allocation_delay_ms if opts.profile == "fair" else 0.0)
    pairs = (lengths.input_tokens, lengths.output_tokens) if lengths else None
    limit = slo.resolve(pm, delay, pairs)
    limit = Slo(limit.kind, limit.limit_ms, limit.quantile, tuple(classes) if lengths else (), length_samples(pairs))
    horizon = opts.horizon_for(single_request_metric_ms(pm, Slo("response", 0.0, 0.5), None, 0.0, pairs))
    bound = capacity_upper_bound(pm, limit, classes, delay)
    bound_doc = {
        "rate_per_s": bound.rate_per_s,
        "lp_rate_per_s": bound.lp_rate_per_s,
        "certified": bound.certified,
        "horizon_s": horizon,
    }
    ceiling = 1.5 * bound.rate_per_s if bound.rate_per_s > 0 else 1.0
    start = 0.5 * bound.rate_per_s if bound.rate_per_s > 0 else spec.rate_per_s
    stream: list[UnitStream] = []

    def workload_at(rate: float) -> Workload:
        n = opts.requests_at(rate, horizon)
        if not stream or len(stream[0].gaps) < n:
            size = max(n, 2 * opts.requests_at(ceiling, horizon))
            stream[:] = [UnitStream.draw(scenario, pm.swarm.n_clients, seed, run, size, base_dir)]
        return stream[0].at(rate, n)

    searches = {}
    for method in get_methods(method_names):
        built: dict[float, tuple] = {}  # rate → (placement, policy): the one at lo is reported below

        def evaluate(rate: float, method=method, built=built) -> tuple[float, dict]:
            method_rng = run_seeds(seed, run)[2]
            ctx = MethodContext(
                pm,
                method_rng,
                rate,
                scenario.placement.R,
                opts.cache_test,
                overrides={"slo-pack": slo_pack_options(limit, opts.slo_pack_dispatch)},
            )
            try:
                placement, policy = built[rate] = method.build(ctx)
            except SwarmplanError:
                return math.inf, {"error": "no placement"}
            result = run_policy(
                pm, placement, workload_at(rate), policy, allocation_delay_ms(method, opts.profile, pm), method.name
            )
            diag = _diagnostics(result)
            # A quantile has slack that a growing queue can fill for a long time before it breaks, so
            # under a quantile SLO the swarm must also keep up: its backlog may grow by at most the search's
            # resolution, or by what chance gives a stable swarm (docs/capacity.md §1.2).
            diag["backlog_growth"] = backlog_growth(result, opts.warmup_fraction)
            diag["backlog_noise"] = backlog_noise(result, opts.warmup_fraction)
            allowed = max(opts.rel_tol, diag["backlog_noise"])
            diag["keeps_up"] = limit.kind != "response" or diag["backlog_growth"] <= allowed
            return measure(result, limit, opts.warmup_fraction), diag

        search = search_method(evaluate, limit.limit_ms, start if bound.rate_per_s > 0 else spec.rate_per_s, ceiling, opts)
        if search.lo > 0:  # how much of the bound its placement keeps before any waiting (docs/capacity.md §6)
            placement, policy = built[search.lo]  # lo held, so it was built there
            try:
                search.fluid_per_s = placement_fluid_per_s(pm, placement, limit, delay)
                search.design = str(placement.info.get("candidate", ""))
                theta = long_output_limit_of(policy)
                if theta is not None:  # SLO-Pack's long-output limit at lo (docs/capacity.md §5.5)
                    search.design += f", outputs > {theta:g} tokens off the fastest tier"
            except SwarmplanError:
                pass
        searches[method.name] = search
    return limit.limit_ms, bound_doc, searches


def capacity(
    scenario: Scenario,
    methods: list[str] | None,
    slo: SloSpec,
    runs: int,
    seed: int,
    opts: SearchOptions = SearchOptions(),
    base_dir: Path | None = None,
    jobs: int = 1,
    progress: Callable[[], None] | None = None,
) -> CapacityResult:
    """Every method's capacity at ``slo`` over ``runs`` swarm draws, and the upper bound per draw."""
    names = [m.name for m in get_methods(methods)]
    if scenario.workload.arrivals == "trace":  # capacity is defined for Poisson arrivals; keep the trace's lengths
        scenario = scenario.model_copy(update={"workload": scenario.workload.model_copy(update={"arrivals": "poisson"})})
    res = CapacityResult(scenario.name, slo, runs, seed, opts, names)
    outcomes: dict[int, tuple] = {}
    args = [(scenario, names, slo, run, seed, opts, base_dir) for run in range(runs)]
    if jobs <= 1 or runs == 1:
        for run, a in enumerate(args):
            outcomes[run] = run_capacity(*a)
            if progress:
                progress()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_capacity, *a): run for run, a in enumerate(args)}
            for fut in as_completed(futures):
                outcomes[futures[fut]] = fut.result()
                if progress:
                    progress()
    res.limits_ms = [outcomes[r][0] for r in range(runs)]
    res.bounds = [outcomes[r][1] for r in range(runs)]
    res.searches = {n: [outcomes[r][2][n] for r in range(runs)] for n in names}
    return res


__all__ = [
    "CapacityResult",
    "SearchOptions",
    "SloSpec",
    "UnitStream",
    "capacity",
    "measure",
    "parse_slo",
    "run_capacity",
    "search_method",
]
