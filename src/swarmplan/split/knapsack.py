"""Across requests: the requests of one device share its compute budget, so choosing their splits is a
multiple-choice knapsack (docs/split.md §5; the reconstruction of SplitLLM in related-work §3).

Each request has options (client work in budget units, server work); one option per request; the units
used on a device may not exceed its budget. ``knapsack_min_work`` is the exact DP over the budget,
V_q(b) = min_o V_{q−1}(b − u_o) + w_o, so it is optimal for these integer units. A request may also be
left unserved (no units, a penalty larger than all server work together): the DP then serves as many
requests within their SLA as the budget allows, and the least server work among those plans. ``greedy``
is the baseline: in arrival order, each request takes the option of least server work that still fits.
"""

from __future__ import annotations

import math

import numpy as np

Option = tuple[int, float]  # (client budget units, server work ms)


def budget_units(client_work_ms: float, unit_ms: float) -> int:
    """docs/split.md §5 — client work in whole budget units, rounded up so a plan never exceeds the budget."""
    if client_work_ms <= 0:
        return 0
    if unit_ms <= 0:
        return 1 << 62
    return math.ceil(client_work_ms / unit_ms - 1e-9)


def drop_penalty(options: list[list[Option]]) -> float:
    """More than the server work of every request's costliest option together."""
    return 1.0 + sum(max((w for _, w in opts), default=0.0) for opts in options)


def knapsack_min_work(options: list[list[Option]], capacity: int) -> tuple[list[int | None], float]:
    """Exact multiple-choice knapsack over one device's requests: returns, per request, the index of its
    option (None = not served) and the objective (server work + penalty per unserved request)."""
    n = len(options)
    penalty = drop_penalty(options)
    value = np.zeros(capacity + 1)  # value[b] = least cost of the requests so far with ≤ b units
    choice = np.full((n, capacity + 1), -1, dtype=np.int32)
    for r, opts in enumerate(options):
        new = value + penalty  # not served
        pick = np.full(capacity + 1, -1, dtype=np.int32)
        for i, (u, w) in enumerate(opts):
            if u > capacity:
                continue
            cand = value[: capacity + 1 - u] + w
            better = cand < new[u:] - 1e-9
            new[u:] = np.where(better, cand, new[u:])
            pick[u:] = np.where(better, i, pick[u:])
        value, choice[r] = new, pick
    picks: list[int | None] = [None] * n
    b = capacity
    for r in range(n - 1, -1, -1):
        i = int(choice[r, b])
        if i >= 0:
            picks[r] = i
            b -= options[r][i][0]
        else:
            picks[r] = None
    return picks, float(value[capacity])


def greedy(options: list[list[Option]], capacity: int) -> tuple[list[int | None], float]:
    """related-work §3 — in arrival order, the option of least server work that fits what is left."""
    penalty = drop_penalty(options)
    left, picks, total = capacity, [], 0.0
    for opts in options:
        fits = [i for i, (u, _) in enumerate(opts) if u <= left]
        if not fits:
            picks.append(None)
            total += penalty
            continue
        i = min(fits, key=lambda i: (opts[i][1], opts[i][0]))
        picks.append(i)
        left -= opts[i][0]
        total += opts[i][1]
    return picks, total


def brute_force_min_work(options: list[list[Option]], capacity: int) -> float:
    """Every combination (tests only): the least objective of ``knapsack_min_work``."""
    import itertools

    penalty = drop_penalty(options)
    best = float("inf")
    for combo in itertools.product(*[list(range(len(o))) + [None] for o in options]):
        used = sum(options[r][i][0] for r, i in enumerate(combo) if i is not None)
        if used <= capacity:
            cost = sum(options[r][i][1] if i is not None else penalty for r, i in enumerate(combo))
            best = min(best, cost)
    return best
