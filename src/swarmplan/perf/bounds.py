"""Cheap lower bounds on the mean per-token decode time (docs/model.md §13.3)."""

from __future__ import annotations

import numpy as np

from swarmplan.perf.model import PerfModel


def single_request_lower_bound_ms(pm: PerfModel, client: int) -> float:
    """docs/model.md §13.3 — the fastest possible chain for one request if every server could hold as many
    blocks as its memory allows (weights plus one request's cache, within its clamp), anywhere in the model:
    min Σ_j (RTT_cj + τ_j n_j) over distinct servers with Σ n_j = L and n_j ≤ cap_j (a knapsack DP).
    No placement and routing can do better, so it bounds every method from below."""
    L = pm.L
    cap = np.minimum(np.minimum(pm.max_blocks, L), np.floor(pm.memory_gb / (pm.block_gb + pm.kv_gb) + 1e-9)).astype(int)
    best = np.full(L + 1, np.inf)
    best[0] = 0.0
    for j in range(pm.n_servers):
        new = best.copy()
        for k in range(1, int(cap[j]) + 1):
            cost = pm.rtt_ms[client, j] + pm.tau_ms[j] * k
            np.minimum(new[k:], best[: L + 1 - k] + cost, out=new[k:])
        best = new
    return float(best[L])


def lower_bound_ms(pm: PerfModel, requests_per_client: np.ndarray) -> float:
    """The single-request bound averaged over the requests of every client."""
    per_client = np.array([single_request_lower_bound_ms(pm, c) for c in range(pm.rtt_ms.shape[0])])
    return float((per_client * requests_per_client).sum() / requests_per_client.sum())
