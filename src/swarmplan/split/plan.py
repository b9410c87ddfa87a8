"""Plan the splits of a planning window of requests: the knapsack DP against greedy and all-on-server, and
the server throughput at SLA each gives (docs/split.md §5–6). Plain data in, plain data out."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.workload import draw_workload
from swarmplan.split.knapsack import budget_units, greedy, knapsack_min_work
from swarmplan.split.model import Device, RequestType, SplitModel
from swarmplan.split.per_request import (
    SplitOption,
    best_split,
    brute_force_options,
    evaluate_split,
    split_options,
    work_frontier,
)

METHODS = ("split-dp", "greedy", "all-on-server")


@dataclass(frozen=True)
class Requests:
    """A planning window: who sends what, when (arrays indexed by request)."""

    arrival_ms: np.ndarray
    type_index: np.ndarray
    device_class: np.ndarray
    device_instance: np.ndarray  # index within its class
    window_ms: float

    @property
    def n(self) -> int:
        return len(self.arrival_ms)


def draw_requests(scenario: Scenario, sm: SplitModel, rng: np.random.Generator, n: int | None = None) -> Requests:
    """Arrivals from the scenario's workload (Poisson or a trace's timestamps); type and device class drawn
    by their shares, the device uniformly within its class — all from ``rng``."""
    wl = draw_workload(scenario.workload, 1, rng, n)
    k = wl.n
    types = rng.choice(len(sm.types), size=k, p=[t.share for t in sm.types])
    classes = rng.choice(len(sm.devices), size=k, p=[d.share for d in sm.devices])
    inst = np.array([rng.integers(sm.devices[c].count) for c in classes], dtype=np.int64)
    if scenario.workload.arrivals == "poisson":
        window = k * 1000.0 / scenario.workload.rate_per_s
    else:
        span = float(wl.arrival_ms[-1] - wl.arrival_ms[0])
        window = span * k / max(k - 1, 1) if span > 0 else k * 1000.0 / scenario.workload.rate_per_s
    return Requests(wl.arrival_ms, types.astype(np.int64), classes.astype(np.int64), inst, window)


class OptionBook:
    """Per (request type, device class): the DP's SLA-feasible splits, computed once."""

    def __init__(self, sm: SplitModel):
        self.sm = sm
        self._cache: dict[tuple, object] = {}
        self._fronts: dict[tuple[int, int], list[SplitOption]] = {}

    def options(self, t: int, d: int) -> list[SplitOption]:
        key = (t, d)
        if key not in self._cache:
            self._cache[key] = split_options(self.sm.stack(self.sm.types[t], self.sm.devices[d]))
        return self._cache[key]

    def frontier(self, t: int, d: int) -> list[SplitOption]:
        if (t, d) not in self._fronts:
            self._fronts[(t, d)] = work_frontier(self.options(t, d))
        return self._fronts[(t, d)]

    def best(self, t: int, d: int) -> SplitOption | None:
        return best_split(self.options(t, d))

    def all_on_server(self, t: int, d: int) -> SplitOption:
        key = ("k0", t, d)
        if key not in self._cache:
            self._cache[key] = evaluate_split(self.sm.stack(self.sm.types[t], self.sm.devices[d]), 0, 0)
        return self._cache[key]

    def check_feasible(self, pairs) -> None:
        """docs/split.md §7 — a type that no split lets meet its SLA is an input error; say by how much."""
        for t, d in pairs:
            if self.options(t, d):
                continue
            raise SwarmplanError(
                "split.request_types",
                _sla_gap(self.sm, t, d),
                "relax that SLA, give the device class a faster link or device, or a faster server",
            )


def _sla_gap(sm: SplitModel, t: int, d: int) -> str:
    rt, dev = sm.types[t], sm.devices[d]
    st = sm.stack(rt, dev)
    free = type(st)(
        **{**st.__dict__, "sla_response_ms": float("inf"), "sla_ttft_ms": float("inf"), "sla_per_token_ms": float("inf")}
    )
    every = brute_force_options(free)
    head = f"request type {rt.name!r} from device class {dev.name!r} cannot meet its SLA ({rt.sla_text()}) with any split"
    for label, bound, get, unit, scale in (
        ("response", rt.sla_response_ms, lambda o: o.response_ms, "s", 1000.0),
        ("TTFT", rt.sla_ttft_ms, lambda o: o.ttft_ms, "s", 1000.0),
        ("per-token time", rt.sla_per_token_ms, lambda o: o.token_ms, "ms", 1.0),
    ):
        o = min(every, key=get)
        if get(o) > bound:
            return (
                f"{head}: its fastest {label} is {get(o) / scale:.4g} {unit} (client blocks {o.prefix}+{o.suffix}), "
                f"{(get(o) - bound) / scale:.4g} {unit} over the bound of {bound / scale:g} {unit}"
            )
    return f"{head}: each bound can be met, but no single split meets all at once"


@dataclass
class PlanResult:
    """One method's choices for a planning window and what they cost."""

    method: str
    choices: list[SplitOption | None]  # None: the request cannot be served within its SLA
    server_work_ms: np.ndarray  # per request (0 when unserved)
    client_work_ms: np.ndarray
    kv_gb_ms: np.ndarray  # server KV held × time, per request
    all_server_work_ms: float  # the same requests, every block on the server
    kv_free_gb: float

    @property
    def served(self) -> int:
        return sum(c is not None for c in self.choices)

    @property
    def n(self) -> int:
        return len(self.choices)

    @property
    def server_work_fraction(self) -> float:
        return float(self.server_work_ms.sum() / self.all_server_work_ms)

    @cached_property
    def bounds_per_s(self) -> tuple[float, float]:
        """docs/split.md §6 — (compute bound, KV-memory bound) on the server's rate of these requests."""
        ok = np.array([c is not None for c in self.choices])
        if not ok.any():
            return 0.0, 0.0
        w = float(self.server_work_ms[ok].mean())
        kv = float(self.kv_gb_ms[ok].mean())
        compute = 1000.0 / w if w > 0 else float("inf")
        memory_ = 1000.0 * self.kv_free_gb / kv if kv > 0 else float("inf")
        return compute, memory_

    @property
    def throughput_at_sla_per_s(self) -> float:
        """docs/split.md §6 — served share × min(compute bound, KV bound)."""
        return self.served / self.n * min(self.bounds_per_s)

    def summary(self) -> dict:
        compute, kv = self.bounds_per_s
        return {
            "method": self.method,
            "requests": self.n,
            "within_sla": self.served,
            "server_work_per_request_ms": float(self.server_work_ms.mean()),
            "client_work_per_request_ms": float(self.client_work_ms.mean()),
            "server_work_fraction": self.server_work_fraction,
            "compute_bound_per_s": compute,
            "kv_bound_per_s": kv,
            "throughput_at_sla_per_s": self.throughput_at_sla_per_s,
        }


@dataclass
class SplitPlan:
    """The three methods on one planning window, and the per-pair optima."""

    sm: SplitModel
    requests: Requests
    results: dict[str, PlanResult]
    book: OptionBook
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (type, device class) with traffic

    @property
    def dp(self) -> PlanResult:
        return self.results["split-dp"]

    @property
    def throughput_gain_over_greedy(self) -> float:
        g = self.results["greedy"].throughput_at_sla_per_s
        return self.dp.throughput_at_sla_per_s / g - 1.0 if g > 0 else float("inf")

    def type_rows(self) -> list[dict]:
        """Per (request type, device class): the unconstrained optimum and what the DP gave its requests."""
        L = self.sm.L
        rows = []
        for t, d in self.pairs:
            rt, dev = self.sm.types[t], self.sm.devices[d]
            best, aos = self.book.best(t, d), self.book.all_on_server(t, d)
            mine = [r for r in range(self.requests.n) if self.requests.type_index[r] == t and self.requests.device_class[r] == d]
            got = [self.dp.choices[r] for r in mine]
            served = [c for c in got if c is not None]
            rows.append(
                {
                    "type": rt.name,
                    "device": dev.name,
                    "requests": len(mine),
                    "share": rt.share * dev.share,
                    "sla": rt.sla_text(),
                    "split": {"client_prefix": best.prefix, "client_suffix": best.suffix, "server_blocks": best.server_blocks(L)},
                    "response_s": best.response_ms / 1000,
                    "ttft_s": best.ttft_ms / 1000,
                    "token_ms": best.token_ms,
                    "sla_response_s": _finite(rt.sla_response_ms, 1000),
                    "sla_ttft_s": _finite(rt.sla_ttft_ms, 1000),
                    "sla_per_token_ms": _finite(rt.sla_per_token_ms, 1),
                    "server_work_ms": best.server_work_ms,
                    "all_on_server_work_ms": aos.server_work_ms,
                    "all_on_server_response_s": aos.response_ms / 1000,
                    "dp_mean_server_blocks": float(np.mean([c.server_blocks(L) for c in served])) if served else None,
                    "dp_within_sla": len(served),
                }
            )
        return rows

    def to_json(self) -> dict:
        g, a = self.results["greedy"], self.results["all-on-server"]
        return {
            "server": self.sm.server.name,
            "blocks": self.sm.L,
            "requests": self.requests.n,
            "window_s": self.requests.window_ms / 1000,
            "server_decode_batch": self.sm.server.decode_batch,
            "server_work_fraction": self.dp.server_work_fraction,
            "throughput_gain_over_greedy": self.throughput_gain_over_greedy,
            "throughput_at_sla_per_s": {k: v.throughput_at_sla_per_s for k, v in self.results.items()},
            "greedy_server_work_fraction": g.server_work_fraction,
            "all_on_server_within_sla": a.served,
            "methods": {k: v.summary() for k, v in self.results.items()},
            "types": self.type_rows(),
        }


def _finite(x: float, scale: float):
    return x / scale if np.isfinite(x) else None


def _result(sm: SplitModel, req: Requests, book: OptionBook, method: str, choices) -> PlanResult:
    L = sm.L
    sw = np.array([c.server_work_ms if c else 0.0 for c in choices])
    cw = np.array([c.client_work_ms if c else 0.0 for c in choices])
    kv = np.array(
        [c.server_blocks(L) * sm.kv_gb(sm.types[req.type_index[r]]) * c.response_ms if c else 0.0 for r, c in enumerate(choices)]
    )
    everything = sum(book.all_on_server(int(t), int(d)).server_work_ms for t, d in zip(req.type_index, req.device_class))
    return PlanResult(method, list(choices), sw, cw, kv, float(everything), sm.server.kv_free_gb)


def plan_window(sm: SplitModel, req: Requests) -> SplitPlan:
    """docs/split.md §5 — per device: the knapsack DP and greedy over its requests in arrival order;
    all-on-server takes k = 0 for every request (unserved where that breaks the SLA)."""
    if sm.server.kv_free_gb <= 0:
        raise SwarmplanError(
            "split.server",
            f"server {sm.server.name} cannot hold all {sm.L} blocks with room for a cache",
            "give the split a server with more memory or quantise the model",
        )
    book = OptionBook(sm)
    pairs = sorted({(int(t), int(d)) for t, d in zip(req.type_index, req.device_class)})
    book.check_feasible(pairs)
    order = np.argsort(req.arrival_ms, kind="stable")
    dp: list[SplitOption | None] = [None] * req.n
    gr: list[SplitOption | None] = [None] * req.n
    by_device: dict[tuple[int, int], list[int]] = {}
    for r in order.tolist():  # each device's requests in arrival order
        by_device.setdefault((int(req.device_class[r]), int(req.device_instance[r])), []).append(r)
    for (c, i), mine in sorted(by_device.items()):
        dev: Device = sm.devices[c]
        unit = dev.budget_fraction * req.window_ms / sm.budget_resolution
        fronts = [book.frontier(int(req.type_index[r]), c) for r in mine]
        opts = [[(budget_units(o.client_work_ms, unit), o.server_work_ms) for o in f] for f in fronts]
        for name, solve, out in (("dp", knapsack_min_work, dp), ("greedy", greedy, gr)):
            picks, _ = solve(opts, sm.budget_resolution)
            for r, f, p in zip(mine, fronts, picks):
                out[r] = None if p is None else f[p]
    aos = []
    for r in range(req.n):
        t, d = int(req.type_index[r]), int(req.device_class[r])
        o = book.all_on_server(t, d)
        rt: RequestType = sm.types[t]
        ok = (
            o.ttft_ms <= rt.sla_ttft_ms + 1e-9
            and o.token_ms <= rt.sla_per_token_ms + 1e-9
            and o.response_ms <= rt.sla_response_ms + 1e-9
        )
        aos.append(o if ok else None)
    results = {m: _result(sm, req, book, m, ch) for m, ch in zip(METHODS, (dp, gr, aos))}
    return SplitPlan(sm, req, results, book, pairs)
