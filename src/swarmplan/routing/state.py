"""The routing-policy contract: what a policy may read of the swarm's state (docs/architecture.md, "Routing
policies").

A policy sees the slot state only through this protocol, so the same policy object routes in the simulator
(``SlotBook``) and in a live client talking to real servers (``swarmplan.runtime``), which implements it from
the servers' real admissions. A policy never changes the state: the caller books what it returns.
"""

from __future__ import annotations

from typing import Protocol, Sequence


class SlotState(Protocol):
    capacity: Sequence[int]  # KV slots of each server now (0 while a server is down)
    sessions: Sequence[int]  # sessions each server holds now

    def free(self, j: int) -> int:
        """Slots of server j not held by any session."""

    def wait_ms(self, j: int, k: int, now_ms: float) -> float:
        """Expected time from ``now_ms`` until ``k`` slots are free at j (0 if free now, inf if never)."""

    def is_up(self, j: int) -> bool:
        """Whether server j is alive (a down server must not be routed to)."""

    @property
    def n_down(self) -> int:
        """How many servers are down (0 lets policies skip the liveness checks)."""
