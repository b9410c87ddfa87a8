"""What every waiting model shares: a request's times on a chain (docs/model.md §3.3), the per-request
record, and the accounting of sessions that churn cuts and resumes (docs/model.md §16)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement
from swarmplan.scenario.workload import Workload
from swarmplan.sim.result import ChurnRecord, SimResult


class ChainTimer:
    """t_1(p) and t_tok(p) for a request's client and input length; the per-(client, l_in) rows are cached
    as Python lists because the loops call this once per request."""

    def __init__(self, pm: PerfModel):
        self.pm = pm
        self.tau = pm.tau_ms.tolist()
        self.rtt_rows = [row.tolist() for row in pm.rtt_ms]
        self._input_rows: dict[tuple[int, int], tuple[list[float], list[float]]] = {}

    def _rows(self, client: int, input_tokens: int):
        rows = self._input_rows.get((client, input_tokens))
        if rows is None:
            rows = self._input_rows[(client, input_tokens)] = (
                self.pm.rtt_in_for(input_tokens)[client].tolist(),
                self.pm.tau_in_for(input_tokens).tolist(),
            )
        return rows

    def times(self, client: int, input_tokens: int, servers, blocks) -> tuple[float, float]:
        rtt_in, tau_in = self._rows(client, input_tokens)
        rtt, tau = self.rtt_rows[client], self.tau
        t1 = tok = 0.0
        for j, k in zip(servers, blocks):
            t1 += rtt_in[j] + tau_in[j] * k
            tok += rtt[j] + tau[j] * k
        return t1, tok

    def replay_ms(self, client: int, tokens: int, servers, blocks, kept: set[tuple[int, int]]) -> float:
        """docs/model.md §16.2 — the prefill of ``tokens`` positions on the hops not kept from the old chain."""
        rtt_in, tau_in = self._rows(client, tokens)
        return sum(rtt_in[j] + tau_in[j] * k for j, k in zip(servers, blocks) if (j, k) not in kept)


@dataclass
class _Segment:
    """The session a request is running now: when its service starts and how fast its tokens come."""

    servers: tuple[int, ...]
    blocks: tuple[int, ...]
    wait_ms: float  # waited before this segment's service starts
    start_ms: float  # service start (set-up begins)
    setup_ms: float
    head_ms: float  # prefill (fresh) or replay (resumed) before decode steps
    tok_ms: float  # one decode step on this chain (× the request's service factor)
    tokens_before: int  # tokens the request had when the segment started


@dataclass
class _Interrupted:
    """Accumulated record of a request some failure cut (docs/model.md §16.3)."""

    wait: float = 0.0
    delay: float = 0.0
    prefill: float = 0.0
    decode: float = 0.0
    tokens: int = 0  # tokens generated so far (kept by the client)
    first_token_ms: float = math.nan
    planned_completion_ms: float = math.nan
    recomputed_tokens: int = 0
    interruptions: int = 0
    segments: list = field(default_factory=list)  # (servers, blocks, start, end) of every cut session
    kept: set = field(default_factory=set)  # (server, blocks) hops whose KV cache survived the last cut


MAX_SHARED = 1 << 16  # distinct chains kept for sharing (a run reuses few; the bound keeps the table small)


class RunRecorder:
    """The workload as plain lists (the loops index them once per request) and the per-request records."""

    def __init__(self, pm: PerfModel, workload: Workload, allocation_delay_ms: float, track_segments: bool = False):
        self.workload = workload
        self.allocation_delay_ms = allocation_delay_ms
        self.initial_delay = pm.swarm.timing.initial_delay_ms
        self.delay = self.initial_delay + allocation_delay_ms
        self.arrival = workload.arrival_ms.tolist()
        self.input_tokens = workload.input_tokens.tolist()
        self.output_tokens = workload.output_tokens.tolist()
        self.client = workload.client.tolist()
        self._factor = workload.factors.tolist()
        self._timer = ChainTimer(pm)
        n = workload.n
        self.chains: list = [None] * n
        self.processed: list = [None] * n
        self._hops: dict[tuple, tuple] = {}  # each distinct (servers, blocks) once, shared by its requests
        self.raw_wait, self.wait, self.prefill, self.decode = (np.zeros(n) for _ in range(4))
        self.track = track_segments
        self.current: dict[int, _Segment] = {}
        self.cut: dict[int, _Interrupted] = {}
        self.cut_since: dict[int, float] = {}  # cut requests not yet resumed → when they were cut
        self.completion_ms = np.full(n, np.nan) if track_segments else None
        self.stalled: set[int] = set()  # requests that ever waited for coverage

    def serve(self, r: int, servers, blocks, wait_ms: float, raw_wait_ms: float | None = None) -> float:
        """Record request r served on this chain after waiting ``wait_ms``; returns its completion time."""
        t1, tok = self._timer.times(self.client[r], self.input_tokens[r], servers, blocks)
        f = self._factor[r]
        prefill, decode = t1 * f, (self.output_tokens[r] - 1) * tok * f
        self.chains[r], self.processed[r] = self._shared(servers, blocks)
        self.wait[r], self.prefill[r], self.decode[r] = wait_ms, prefill, decode
        self.raw_wait[r] = wait_ms if raw_wait_ms is None else raw_wait_ms
        completion = self.arrival[r] + wait_ms + prefill + decode + self.delay
        if self.track:
            self.current[r] = _Segment(
                tuple(servers), tuple(blocks), wait_ms, self.arrival[r] + wait_ms, self.delay, prefill, tok * f, 0
            )
        return completion

    def _shared(self, servers, blocks) -> tuple[tuple, tuple]:
        """The request's chain as tuples shared with every other request on the same chain: requests reuse
        few chains, so 10⁶ requests cost two list slots each instead of two tuples (≈ 110 bytes) each. The
        table stops growing at ``MAX_SHARED`` distinct chains (then each further one is its own tuple)."""
        key = (tuple(servers), tuple(blocks))
        hit = self._hops.get(key)
        if hit is None:
            if len(self._hops) >= MAX_SHARED:
                return key
            hit = self._hops[key] = key
        return hit

    def interrupt(self, r: int, now: float, failed: int) -> None:
        """docs/model.md §16.3 — request r's session is cut at ``now`` by the failure of server ``failed``:
        keep its tokens, account its time; the other hops keep their KV caches."""
        seg = self.current.pop(r)
        acc = self.cut.get(r)
        if acc is None:
            acc = self.cut[r] = _Interrupted(planned_completion_ms=self._segment_end(r, seg))
        acc.interruptions += 1
        acc.segments.append((seg.servers, seg.blocks, seg.start_ms, now))
        acc.kept = {(j, k) for j, k in zip(seg.servers, seg.blocks) if j != failed}
        self.cut_since[r] = now
        if now < seg.start_ms:  # still waiting: only the wait so far counts
            acc.wait += now - (seg.start_ms - seg.wait_ms)
            return
        acc.wait += seg.wait_ms
        elapsed = now - seg.start_ms
        if elapsed < seg.setup_ms:
            return
        acc.delay += seg.setup_ms
        if elapsed < seg.setup_ms + seg.head_ms:
            return
        acc.prefill += seg.head_ms
        steps_left = self.output_tokens[r] - max(seg.tokens_before, 1)
        steps = steps_left if seg.tok_ms <= 0 else min(int((elapsed - seg.setup_ms - seg.head_ms) // seg.tok_ms), steps_left)
        if seg.tokens_before == 0:
            acc.first_token_ms = seg.start_ms + seg.setup_ms + seg.head_ms
            acc.tokens = 1 + steps
        else:
            acc.tokens = seg.tokens_before + steps
        acc.decode += steps * seg.tok_ms

    def resume(self, r: int, now: float, servers, blocks, wait_ms: float) -> float:
        """Serve a cut request again on a new chain from ``now``: a fresh prefill if it had no token yet,
        else a replay of its prefix on the hops it did not keep (docs/model.md §16.2); returns the completion."""
        acc = self.cut[r]
        acc.wait += now - self.cut_since.pop(r)  # waited since the cut (re-routing, back-off, coverage)
        c, l_in, l_out, f = self.client[r], self.input_tokens[r], self.output_tokens[r], self._factor[r]
        t1, tok = self._timer.times(c, l_in, servers, blocks)
        if acc.tokens == 0:
            head, steps = t1 * f, l_out - 1
            acc.recomputed_tokens += l_in
        else:
            prefix = l_in + acc.tokens - 1
            head = self._timer.replay_ms(c, prefix, servers, blocks, acc.kept) * f
            steps = l_out - acc.tokens
            acc.recomputed_tokens += prefix
        self.chains[r], self.processed[r] = self._shared(servers, blocks)
        seg = _Segment(tuple(servers), tuple(blocks), wait_ms, now + wait_ms, self.initial_delay, head, tok * f, acc.tokens)
        self.current[r] = seg
        return now + wait_ms + self.initial_delay + head + steps * tok * f

    def _segment_end(self, r: int, seg: _Segment) -> float:
        steps = self.output_tokens[r] - max(seg.tokens_before, 1)
        return seg.start_ms + seg.setup_ms + seg.head_ms + steps * seg.tok_ms

    def complete(self, r: int, now: float) -> None:
        """Request r finished at ``now`` (tracked runs only): close the record of a request churn cut."""
        self.completion_ms[r] = now
        seg = self.current.pop(r)
        acc = self.cut.get(r)
        if acc is None:
            return
        acc.segments.append((seg.servers, seg.blocks, seg.start_ms, now))
        self.wait[r] = acc.wait + seg.wait_ms
        self.prefill[r] = acc.prefill + seg.head_ms
        self.decode[r] = acc.decode + (self.output_tokens[r] - max(seg.tokens_before, 1)) * seg.tok_ms
        acc.delay += seg.setup_ms
        if seg.tokens_before == 0:
            acc.first_token_ms = seg.start_ms + seg.setup_ms + seg.head_ms

    def result(self, method: str, placement: Placement, max_concurrency: int, churn: ChurnRecord | None = None) -> SimResult:
        n = self.workload.n
        delay = np.full(n, self.delay)
        if churn is not None:
            churn = self._churn_arrays(churn, delay)
        return SimResult(
            method,
            placement,
            self.workload,
            self.chains,
            self.processed,
            self.raw_wait,
            self.wait,
            self.prefill,
            self.decode,
            delay,
            max_concurrency,
            self.allocation_delay_ms,
            churn,
        )

    def _churn_arrays(self, churn: ChurnRecord, delay: np.ndarray) -> ChurnRecord:
        n = self.workload.n
        lost, extra, ttft = np.zeros(n), np.zeros(n), np.full(n, np.nan)
        recomputed, interruptions = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        segments = {}
        arrival = self.workload.arrival_ms
        for r, acc in self.cut.items():
            done = self.completion_ms[r]
            delay[r] = acc.delay
            ttft[r] = acc.first_token_ms - arrival[r]
            lost[r] = (done - arrival[r]) - (self.wait[r] + self.prefill[r] + self.decode[r] + delay[r])
            extra[r] = done - acc.planned_completion_ms
            recomputed[r], interruptions[r] = acc.recomputed_tokens, acc.interruptions
            segments[r] = acc.segments
        unfinished = np.isnan(self.completion_ms)
        return ChurnRecord(
            churn.events,
            churn.longest_outage_ms,
            churn.placement_changes,
            lost,
            extra,
            ttft,
            recomputed,
            interruptions,
            np.array([r in self.stalled for r in range(n)]),
            unfinished,
            segments,
        )
