"""Per-request records of one simulated run and what is derived from them (docs/model.md §3.7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.placement.types import Placement
from swarmplan.scenario.workload import Workload


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

    @property
    def response_ms(self) -> np.ndarray:
        return self.wait_ms + self.prefill_ms + self.decode_ms + self.delay_ms

    @property
    def ttft_ms(self) -> np.ndarray:
        return self.wait_ms + self.prefill_ms + self.delay_ms

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

    def slot_utilisation(self) -> np.ndarray:
        """Time-average share of each server's slots held by running sessions over [first arrival, last completion]."""
        n = len(self.placement.cache_slots)
        held = np.zeros(n)
        start, end = self.start_ms, self.completion_ms
        for r, (chain, ks) in enumerate(zip(self.chains, self.processed)):
            for j, k in zip(chain, ks):
                held[j] += k * (end[r] - start[r])
        horizon = end.max() - self.workload.arrival_ms.min()
        cap = np.asarray(self.placement.cache_slots, dtype=float)
        return np.divide(held, cap * horizon, out=np.zeros(n), where=cap > 0)

    def summary(self) -> dict:
        resp = self.response_ms
        return {
            "per_token_s": float(self.per_token_ms.mean() / 1000),
            "ttft_s": float(self.ttft_ms.mean() / 1000),
            "wait_s": float(self.wait_ms.mean() / 1000),
            "service_s": float((self.prefill_ms + self.decode_ms).mean() / 1000),
            "response_mean_s": float(resp.mean() / 1000),
            "response_p50_s": float(np.percentile(resp, 50) / 1000),
            "response_p95_s": float(np.percentile(resp, 95) / 1000),
            "response_p99_s": float(np.percentile(resp, 99) / 1000),
            "max_concurrency": int(self.max_concurrency),
            "mean_slot_utilisation": float(self.slot_utilisation().mean()),
            "slot_utilisation_per_server": [round(float(u), 6) for u in self.slot_utilisation()],
            "requests": int(len(resp)),
        }


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
