"""Live slot state: what the routing policies read, fed by the servers' real admissions and releases
(docs/runtime.md §4; the contract of routing.slots.SlotBook, docs/model.md §9.3). It lives in the sim layer
because the step-level prediction (sim.step_level, docs/runtime.md §8) runs the live client's drivers on it.

The routing-state contract of routing.state.SlotState. Two counts per server:
* ``running`` — slots held by sessions the server has admitted and not yet released (from its replies);
* ``used`` — ``running`` plus slots *booked* by requests the client has routed that are still waiting,
  as the paper's model books a chain at routing time (docs/model.md §9.3).
``free(j)`` and ``wait_ms`` are over ``used`` (the paper's policy view); admission is over ``running``
(what a server would accept now). A booking's completion is a prediction (the performance model's service
time from its start); once that instant has passed without a release, the estimate is "now".
A server the client saw fail has capacity 0 until it returns.
"""

from __future__ import annotations


class LiveSlots:
    def __init__(self, capacity):
        self.slots = [int(c) for c in capacity]
        self.capacity = list(self.slots)
        n = len(self.capacity)
        self.used = [0] * n
        self.running = [0] * n
        self.sessions = [0] * n
        self._booked: dict[int, tuple[list[int], list[int]]] = {}
        self._completion: dict[int, float] = {}

    # --- the policy contract (capacity, free, sessions, wait_ms) ---
    def free(self, j: int) -> int:
        return self.capacity[j] - self.used[j]

    def wait_ms(self, j: int, k: int, now: float) -> float:
        """docs/model.md §9.3 over live bookings: 0 if k slots are free, inf if j has fewer than k at all, else
        the predicted completion (never before now) at which enough bookings end."""
        free = self.free(j)
        if free >= k:
            return 0.0
        if k > self.capacity[j]:
            return float("inf")
        need = k - free
        ends = sorted(
            (max(self._completion[r], now), ks[servers.index(j)]) for r, (servers, ks) in self._booked.items() if j in servers
        )
        for completion, held in ends:
            need -= held
            if need <= 0:
                return completion - now
        return float("inf")

    # --- bookings made by the client ---
    def book(self, r: int, servers, ks, completion_ms: float) -> None:
        servers, ks = list(servers), list(ks)
        for j, k in zip(servers, ks):
            self.used[j] += k
            self.sessions[j] += 1
        self._booked[r] = (servers, ks)
        self._completion[r] = completion_ms

    def predict(self, r: int, completion_ms: float) -> None:
        if r in self._completion:
            self._completion[r] = completion_ms

    def unbook(self, r: int) -> None:
        servers, ks = self._booked.pop(r, ([], []))
        self._completion.pop(r, None)
        for j, k in zip(servers, ks):
            self.used[j] -= k
            self.sessions[j] -= 1

    def booked(self, r: int) -> bool:
        return r in self._booked

    # --- what the servers report ---
    def admitted(self, j: int, k: int) -> None:
        self.running[j] += k

    def released(self, j: int, k: int) -> None:
        self.running[j] -= k

    def can_admit(self, servers, ks) -> bool:
        """Would every server on the chain accept the session now (its own slots, not bookings)?"""
        return all(self.running[j] + k <= self.capacity[j] for j, k in zip(servers, ks))

    def set_dead(self, j: int) -> None:
        self.capacity[j] = 0

    def set_alive(self, j: int) -> None:
        self.capacity[j] = self.slots[j]
        self.running[j] = 0

    def dead(self, j: int) -> bool:
        return self.capacity[j] == 0 and self.slots[j] > 0

    def is_up(self, j: int) -> bool:
        return not self.dead(j)

    @property
    def n_down(self) -> int:
        return sum(self.dead(j) for j in range(len(self.slots)))
