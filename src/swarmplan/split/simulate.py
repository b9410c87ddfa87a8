"""Split-aware simulation of the single-server shape (docs/split.md §6.1): clients compute their share on
their own device (no server slots, no waiting), the server runs the rest and holds the request's KV cache
for its blocks from its start to its completion. As in the swarm simulator (docs/model.md §3.5, §9.3),
memory is the contended resource: a request that does not find room waits (``routing.slots.SlotBook``)
until bookings complete. Every request's times are recomputed in closed form (``evaluate_split``), not
taken from the planner, so a run checks the plan.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from swarmplan.routing.slots import SlotBook
from swarmplan.split.model import SplitModel
from swarmplan.split.per_request import SplitOption, evaluate_split, meets_sla
from swarmplan.split.plan import Requests


@dataclass(frozen=True)
class SplitSimResult:
    method: str
    wait_ms: np.ndarray
    ttft_ms: np.ndarray
    response_ms: np.ndarray
    within_sla: np.ndarray  # bool
    server_work_ms: np.ndarray
    client_work_ms: np.ndarray
    arrival_ms: np.ndarray
    kv_units: np.ndarray  # server KV held by each request (token-blocks)

    def summary(self) -> dict:
        """docs/split.md §6.1 — server and client work per request, requests within SLA, throughput at SLA
        (requests completed within their SLA per second, from the first arrival to the last completion)."""
        done = self.arrival_ms + self.response_ms
        ok = self.within_sla & np.isfinite(self.response_ms)
        span_s = (np.nanmax(np.where(np.isfinite(done), done, np.nan)) - self.arrival_ms.min()) / 1000.0
        return {
            "method": self.method,
            "requests": len(ok),
            "within_sla": int(ok.sum()),
            "within_sla_fraction": float(ok.mean()),
            "server_work_per_request_ms": float(self.server_work_ms.mean()),
            "client_work_per_request_ms": float(self.client_work_ms.mean()),
            "wait_mean_s": float(np.mean(self.wait_ms[np.isfinite(self.wait_ms)]) / 1000)
            if np.isfinite(self.wait_ms).any()
            else None,
            "response_mean_s": float(np.mean(self.response_ms[np.isfinite(self.response_ms)]) / 1000),
            "throughput_at_sla_per_s": float(ok.sum() / span_s) if span_s > 0 else 0.0,
        }


def kv_units(sm: SplitModel) -> int:
    """Server KV capacity in token-blocks (one token's K and V in one block), all L blocks loaded."""
    from swarmplan.perf import memory

    per = memory.kv_bytes_per_token_per_block(sm.model)
    return int(np.floor(sm.server.kv_free_gb * memory.GB / per + 1e-9))


def simulate_split(sm: SplitModel, req: Requests, choices: list[SplitOption | None], method: str) -> SplitSimResult:
    """Replay the window with the given per-request splits. Unserved requests (None) count as missing the SLA."""
    n = req.n
    book = SlotBook(np.array([kv_units(sm)]))
    done: list[tuple[float, int]] = []  # (completion, request) of bookings still held
    wait, ttft, resp = np.full(n, np.nan), np.full(n, np.inf), np.full(n, np.inf)
    ok = np.zeros(n, dtype=bool)
    sw, cw, held = np.zeros(n), np.zeros(n), np.zeros(n)
    for r in np.argsort(req.arrival_ms, kind="stable").tolist():
        choice = choices[r]
        if choice is None:
            continue
        t = sm.types[int(req.type_index[r])]
        st = sm.stack(t, sm.devices[int(req.device_class[r])])
        o = evaluate_split(st, choice.prefix, choice.suffix)
        now = float(req.arrival_ms[r])
        while done and done[0][0] <= now:  # completions up to now free their caches
            book.release(heapq.heappop(done)[1])
        need = o.server_blocks(sm.L) * (t.input_tokens + t.output_tokens)
        w = book.wait_ms(0, need, now) if need > 0 else 0.0
        wait[r], sw[r], cw[r], held[r] = w, o.server_work_ms, o.client_work_ms, need
        if not np.isfinite(w):
            continue
        ttft[r], resp[r] = w + o.ttft_ms, w + o.response_ms
        ok[r] = meets_sla(st, o.ttft_ms + w, o.token_ms) and o.response_ms + w <= st.sla_response_ms + 1e-9
        if need > 0:
            book.book(r, now + resp[r], [0], [need])
            heapq.heappush(done, (now + resp[r], r))
    return SplitSimResult(method, wait, ttft, resp, ok, sw, cw, req.arrival_ms, held)
