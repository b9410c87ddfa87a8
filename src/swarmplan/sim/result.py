"""Per-request records of one simulated run and what is derived from them (docs/model.md §3.7)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from swarmplan.placement.types import Placement
from swarmplan.scenario.workload import Workload

WARMUP_FRACTION = 0.25  # docs/capacity.md §1.2: the first quarter of the arrival span is not judged …
TAIL_FRACTION = 0.25  # … and the last quarter is judged on its own, so a queue still growing there fails


def measured_windows(arrival_ms: np.ndarray, warmup_fraction: float, tail_fraction: float) -> list[np.ndarray]:
    """docs/capacity.md §1.2 — the requests an SLO is judged on, as masks: those arriving after the first
    ``warmup_fraction`` of the arrival span, and those in its last ``tail_fraction`` (empty ones dropped). The
    SLO's metric is the worse of the two."""
    masks = [arrival_ms >= warmup_fraction * arrival_ms[-1], arrival_ms >= (1.0 - tail_fraction) * arrival_ms[-1]]
    return [m for m in masks if m.any()]


@dataclass(frozen=True)
class ChurnRecord:
    """What churn did in one run (docs/model.md §16.4); per-request arrays are 0 / NaN for untouched requests."""

    events: int  # failures and returns replayed
    longest_outage_ms: float  # longest time some block had no live server
    placement_changes: int  # servers that re-chose their blocks on return
    lost_ms: np.ndarray | None = None  # time of cut sessions' work that was thrown away
    extra_ms: np.ndarray | None = None  # completion − the completion planned when the request was first served
    ttft_ms: np.ndarray | None = None  # first-token time of cut requests (NaN: not cut)
    recomputed_tokens: np.ndarray | None = None  # prefix positions replayed (or re-prefilled)
    interruptions: np.ndarray | None = None
    waited_for_coverage: np.ndarray | None = None
    unfinished: np.ndarray | None = None  # never completed: some block never had a live server again
    segments: dict = field(default_factory=dict)  # request → [(servers, blocks, start, end)] of its cut sessions

    def summary(self) -> dict:
        cut = self.interruptions > 0
        return {
            "churn_events": int(self.events),
            "affected_requests": int(cut.sum()),
            "extra_latency_s": float(self.extra_ms[cut].mean() / 1000) if cut.any() else 0.0,
            "recomputed_tokens": int(self.recomputed_tokens.sum()),
            "waited_for_coverage": int(self.waited_for_coverage.sum()),
            "unfinished_requests": int(self.unfinished.sum()),
            "longest_coverage_outage_s": float(self.longest_outage_ms / 1000),
            "placement_changes": int(self.placement_changes),
        }


@dataclass(frozen=True)
class SimResult:
    """Per-request records (ms) of one run; ``summary()`` gives the run's metrics."""

    method: str
    placement: Placement
    workload: Workload
    chains: list[tuple[int, ...]]
    processed: list[tuple[int, ...]]
    raw_wait_ms: np.ndarray
    wait_ms: np.ndarray  # back-off actually waited, B(W)
    prefill_ms: np.ndarray  # t_1(p): prefill and first token
    decode_ms: np.ndarray  # (l_out − 1) · t_tok(p)
    delay_ms: np.ndarray  # initial + allocation delay
    max_concurrency: int
    allocation_delay_ms: float
    churn: ChurnRecord | None = None  # set when a churn schedule ran (docs/model.md §16)

    @property
    def response_ms(self) -> np.ndarray:
        base = self.wait_ms + self.prefill_ms + self.decode_ms + self.delay_ms
        if self.churn is None:
            return base
        return np.where(self.churn.unfinished, np.nan, base + self.churn.lost_ms)

    @property
    def ttft_ms(self) -> np.ndarray:
        base = self.wait_ms + self.prefill_ms + self.delay_ms
        if self.churn is None:
            return base
        return np.where(self.churn.unfinished, np.nan, np.where(np.isnan(self.churn.ttft_ms), base, self.churn.ttft_ms))

    @property
    def start_ms(self) -> np.ndarray:
        """When the request's session really starts holding memory (after its back-off)."""
        return self.workload.arrival_ms + self.wait_ms

    @property
    def completion_ms(self) -> np.ndarray:
        return self.workload.arrival_ms + self.response_ms

    @property
    def per_token_ms(self) -> np.ndarray:
        """docs/model.md §3.7 — D_r / l_out; its mean is the paper's Σ D_r / (n · l_out)."""
        return self.response_ms / self.workload.output_tokens

    def hops(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (request, server, blocks) hop of every served request as three flat arrays, in request then
        chain order (a request churn never served has none)."""
        flat = itertools.chain.from_iterable
        lengths = np.fromiter((0 if c is None else len(c) for c in self.chains), dtype=np.int64, count=len(self.chains))
        total = int(lengths.sum())
        servers = np.fromiter(flat(c for c in self.chains if c is not None), dtype=np.int64, count=total)
        blocks = np.fromiter(flat(k for k in self.processed if k is not None), dtype=np.int64, count=total)
        return np.repeat(np.arange(len(lengths)), lengths), servers, blocks

    def slot_utilisation(self) -> np.ndarray:
        """Time-average share of each server's slots held by running sessions over [first arrival, last completion].

        Slot-time k·(end − start) is added hop by hop in request order (``np.add.at`` is unbuffered and goes
        through the indices in order), so each server's sum is the same float as a loop over the requests."""
        n = len(self.placement.cache_slots)
        held = np.zeros(n)
        start, end = self.start_ms, self.completion_ms
        req, servers, blocks = self.hops()
        np.add.at(held, servers, blocks * (end - start)[req])
        horizon = end.max() - self.workload.arrival_ms.min()
        cap = np.asarray(self.placement.cache_slots, dtype=float)
        return np.divide(held, cap * horizon, out=np.zeros(n), where=cap > 0)

    def summary(self) -> dict:
        if self.churn is not None and self.churn.unfinished.any():
            done = ~self.churn.unfinished
            out = _subset(self, done).summary() if done.any() else {"requests": 0}
            out.update(self.churn.summary(), requests=int(len(done)))
            return out
        resp = self.response_ms
        util = self.slot_utilisation()
        out = {
            "per_token_s": float(self.per_token_ms.mean() / 1000),
            "ttft_s": float(self.ttft_ms.mean() / 1000),
            "wait_s": float(self.wait_ms.mean() / 1000),
            "service_s": float((self.prefill_ms + self.decode_ms).mean() / 1000),
            "response_mean_s": float(resp.mean() / 1000),
            "response_p50_s": float(np.percentile(resp, 50) / 1000),
            "response_p95_s": float(np.percentile(resp, 95) / 1000),
            "response_p99_s": float(np.percentile(resp, 99) / 1000),
            "max_concurrency": int(self.max_concurrency),
            "mean_slot_utilisation": float(util.mean()),
            "slot_utilisation_per_server": [round(float(u), 6) for u in util],
            "requests": int(len(resp)),
        }
        if self.churn is not None:
            out.update(self.churn.summary())
        return out


def _subset(result: SimResult, keep: np.ndarray) -> SimResult:
    """The completed requests of a run that left some unfinished (their metrics; churn counted separately)."""
    idx = np.flatnonzero(keep)
    wl = result.workload
    from swarmplan.scenario.workload import Workload

    sub_wl = Workload(
        wl.arrival_ms[idx],
        wl.input_tokens[idx],
        wl.output_tokens[idx],
        wl.client[idx],
        None if wl.service_factor is None else wl.service_factor[idx],
    )
    lost = result.churn.lost_ms[idx]
    return SimResult(
        result.method,
        result.placement,
        sub_wl,
        [result.chains[i] for i in idx],
        [result.processed[i] for i in idx],
        result.raw_wait_ms[idx],
        result.wait_ms[idx],
        result.prefill_ms[idx],
        result.decode_ms[idx] + lost,
        result.delay_ms[idx],
        result.max_concurrency,
        result.allocation_delay_ms,
    )


def running_slots_peak(result: SimResult) -> np.ndarray:
    """Most slots held at once by *running* sessions on each server (an independent sweep over intervals)."""
    n = len(result.placement.cache_slots)
    events: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for r, (chain, ks) in enumerate(zip(result.chains, result.processed)):
        for j, k in zip(chain, ks):
            events[j].append((float(result.start_ms[r]), k))
            events[j].append((float(result.completion_ms[r]), -k))
    peak = np.zeros(n, dtype=np.int64)
    for j, ev in enumerate(events):
        level = 0
        # Releases before starts at equal times; times that differ only by rounding (a queued job starts at
        # the instant another completes, and arrival + wait need not equal that float exactly) count as equal.
        for _, dk in sorted(ev, key=lambda e: (round(e[0], 6), e[1])):
            level += dk
            peak[j] = max(peak[j], level)
    return peak
