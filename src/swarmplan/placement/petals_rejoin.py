"""A PETALS server that comes back after a failure chooses its blocks again (docs/model.md §16.1;
petals.md §3: a (re)starting server runs ``choose_best_blocks`` over the swarm it sees)."""

from __future__ import annotations

import dataclasses

import numpy as np

from swarmplan.perf.model import PerfModel
from swarmplan.placement.petals import _totals, choose_best_blocks, server_throughputs
from swarmplan.placement.types import Placement


def rejoin_placement(pm: PerfModel, placement: Placement, j: int, live: list[bool]) -> Placement | None:
    """The placement after server j re-joins the live servers, or None when it keeps its blocks.

    Its window is the lowest-throughput one given the other live servers' spans (the same rule as joining).
    """
    m = placement.n_blocks
    if m[j] <= 0:
        return None
    others = np.array(live, dtype=bool)
    others[j] = False
    totals = _totals(placement.start - 1, np.where(others, m, 0), server_throughputs(pm, m), pm.L)
    new = choose_best_blocks(totals, int(m[j])) + 1
    if new == int(placement.start[j]):
        return None
    start = placement.start.copy()
    start[j] = new
    return dataclasses.replace(placement, start=start)
