"""Run any policy on the event core with its waiting model: per-arrival routers in the paper's book-and-wait
model, PETALS' retrying client, JFFC in the central-queue model (docs/model.md §9, §14, §16)."""

from __future__ import annotations

from swarmplan.sim.central import JffcDispatcher, simulate_central
from swarmplan.sim.churn import ChurnSchedule
from swarmplan.sim.engine import SimResult, simulate
from swarmplan.sim.retry import RetryingClient, simulate_retry

WAITING_MODELS = {"book": simulate, "retry": simulate_retry, "queue": simulate_central}


def waiting_model_of(policy) -> str:
    if isinstance(policy, JffcDispatcher):
        return "queue"
    if isinstance(policy, RetryingClient):
        return "retry"
    return "book"


def run_policy(
    pm,
    placement,
    workload,
    policy,
    allocation_delay_ms: float = 0.0,
    method: str | None = None,
    churn: ChurnSchedule | None = None,
    rejoin=None,
) -> SimResult:
    run = WAITING_MODELS[waiting_model_of(policy)]
    return run(pm, placement, workload, policy, allocation_delay_ms, method, churn, rejoin)
