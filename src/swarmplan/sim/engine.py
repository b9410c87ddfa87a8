"""The online discrete-event simulator (docs/model.md §9; Sun et al. 2025 §3.5, §9).

A plain event loop: arrivals in time order, completions on a heap (released lazily when time passes
them). Each arrival is routed once by the policy, books its slots on every chain server until completion
and, if some server is short of slots, waits with PETALS-style back-off. Memory is the only contended
resource: a session's speed does not depend on load (docs/model.md §3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.perf.timing import backoff_ms
from swarmplan.placement.types import Placement
from swarmplan.routing.base import Router
from swarmplan.routing.slots import SlotBook
from swarmplan.scenario.workload import Workload
from swarmplan.sim.chain_timer import ChainTimer


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


def simulate(pm: PerfModel, placement: Placement, workload: Workload, router: Router,
             allocation_delay_ms: float = 0.0, method: str | None = None) -> SimResult:
    t = pm.swarm.timing
    book = SlotBook(placement.cache_slots)
    first_ms, max_ms, d_init = t.backoff_first_ms, t.backoff_max_ms, t.initial_delay_ms
    delay = d_init + allocation_delay_ms
    n = workload.n
    arrival = workload.arrival_ms.tolist()
    l_in_all, l_out_all, client_all = workload.input_tokens.tolist(), workload.output_tokens.tolist(), workload.client.tolist()
    timer = ChainTimer(pm)
    factor = workload.factors.tolist()
    chains, processed = [None] * n, [None] * n
    raw_wait, wait, prefill, decode = (np.zeros(n) for _ in range(4))
    max_conc = 0
    for r in range(n):
        now = arrival[r]
        c, l_in, l_out = client_all[r], l_in_all[r], l_out_all[r]
        book.advance(now)
        if book.active_requests + 1 > max_conc:
            max_conc = book.active_requests + 1
        route = router.route(book, now, c, l_in, l_out)
        servers, ks = route.servers, route.processed
        w_raw = max(route.waits_ms)
        if w_raw == float("inf"):
            raise RuntimeError(f"request {r}: the chosen chain can never fit (router {router.name})")
        b = backoff_ms(w_raw, first_ms, max_ms) if w_raw > 0 else 0.0
        t1, tok = timer.times(c, l_in, servers, ks)
        t1, tok = t1 * factor[r], tok * factor[r]
        dec = (l_out - 1) * tok
        book.book(r, now + b + t1 + dec + delay, servers, ks)
        chains[r], processed[r] = tuple(servers), tuple(ks)
        raw_wait[r], wait[r], prefill[r], decode[r] = w_raw, b, t1, dec
    return SimResult(method or router.name, placement, workload, chains, processed, raw_wait, wait, prefill, decode,
                     np.full(n, delay), max_conc, allocation_delay_ms)


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
