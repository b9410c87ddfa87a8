"""Run any policy: per-arrival routers in the paper's book-and-wait model, PETALS' retrying client,
JFFC in the central-queue model."""

from __future__ import annotations

from swarmplan.sim.central import JffcDispatcher, simulate_central
from swarmplan.sim.engine import SimResult, simulate
from swarmplan.sim.retry import RetryingClient, simulate_retry


def run_policy(pm, placement, workload, policy, allocation_delay_ms: float = 0.0, method: str | None = None) -> SimResult:
    if isinstance(policy, JffcDispatcher):
        return simulate_central(pm, placement, workload, policy, allocation_delay_ms, method)
    if isinstance(policy, RetryingClient):
        return simulate_retry(pm, placement, workload, policy, allocation_delay_ms, method)
    return simulate(pm, placement, workload, policy, allocation_delay_ms, method)
