"""What every event loop shares: a request's times on a chain (docs/model.md §3.3) and the per-request record."""

from __future__ import annotations

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.scenario.workload import Workload
from swarmplan.sim.result import SimResult


class ChainTimer:
    """t_1(p) and t_tok(p) for a request's client and input length; the per-(client, l_in) rows are cached
    as Python lists because the loops call this once per request."""

    def __init__(self, pm: PerfModel):
        self.pm = pm
        self.tau = pm.tau_ms.tolist()
        self.rtt_rows = [row.tolist() for row in pm.rtt_ms]
        self._input_rows: dict[tuple[int, int], tuple[list[float], list[float]]] = {}

    def times(self, client: int, input_tokens: int, servers, blocks) -> tuple[float, float]:
        rows = self._input_rows.get((client, input_tokens))
        if rows is None:
            rows = self._input_rows[(client, input_tokens)] = (
                self.pm.rtt_in_for(input_tokens)[client].tolist(), self.pm.tau_in_for(input_tokens).tolist())
        rtt_in, tau_in = rows
        rtt, tau = self.rtt_rows[client], self.tau
        t1 = tok = 0.0
        for j, k in zip(servers, blocks):
            t1 += rtt_in[j] + tau_in[j] * k
            tok += rtt[j] + tau[j] * k
        return t1, tok


class RunRecorder:
    """The workload as plain lists (the loops index them once per request) and the per-request records."""

    def __init__(self, pm: PerfModel, workload: Workload, allocation_delay_ms: float):
        self.workload = workload
        self.allocation_delay_ms = allocation_delay_ms
        self.delay = pm.swarm.timing.initial_delay_ms + allocation_delay_ms
        self.arrival = workload.arrival_ms.tolist()
        self.input_tokens = workload.input_tokens.tolist()
        self.output_tokens = workload.output_tokens.tolist()
        self.client = workload.client.tolist()
        self._factor = workload.factors.tolist()
        self._timer = ChainTimer(pm)
        n = workload.n
        self.chains: list = [None] * n
        self.processed: list = [None] * n
        self.raw_wait, self.wait, self.prefill, self.decode = (np.zeros(n) for _ in range(4))

    def serve(self, r: int, servers, blocks, wait_ms: float, raw_wait_ms: float | None = None) -> float:
        """Record request r served on this chain after waiting ``wait_ms``; returns its completion time."""
        t1, tok = self._timer.times(self.client[r], self.input_tokens[r], servers, blocks)
        f = self._factor[r]
        prefill, decode = t1 * f, (self.output_tokens[r] - 1) * tok * f
        self.chains[r], self.processed[r] = tuple(servers), tuple(blocks)
        self.wait[r], self.prefill[r], self.decode[r] = wait_ms, prefill, decode
        self.raw_wait[r] = wait_ms if raw_wait_ms is None else raw_wait_ms
        return self.arrival[r] + wait_ms + prefill + decode + self.delay

    def result(self, method: str, placement: Placement, max_concurrency: int) -> SimResult:
        n = self.workload.n
        return SimResult(method, placement, self.workload, self.chains, self.processed, self.raw_wait, self.wait,
                         self.prefill, self.decode, np.full(n, self.delay), max_concurrency, self.allocation_delay_ms)
