"""The metrics every run summary has and every comparison reports, with their types.

One list for both users, so they cannot drift: ``experiments.compare.METRICS`` (the statistics of a
comparison, in this order) and ``experiments.store``'s typed Parquet columns (``FLOAT_METRICS``,
``INT_METRICS``). The values come from ``sim.result.SimResult.summary``.
"""

from __future__ import annotations

RUN_METRICS: dict[str, type] = {
    "per_token_s": float,
    "ttft_s": float,
    "wait_s": float,
    "service_s": float,
    "response_mean_s": float,
    "response_p50_s": float,
    "response_p95_s": float,
    "response_p99_s": float,
    "max_concurrency": int,
    "mean_slot_utilisation": float,
}


def metrics_of(kind: type) -> tuple[str, ...]:
    """The run metrics of one type, in ``RUN_METRICS`` order."""
    return tuple(name for name, t in RUN_METRICS.items() if t is kind)
