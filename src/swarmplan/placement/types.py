"""The result of every placement method.

Blocks are **1-based and inclusive** here, as in the paper: server j holds blocks start[j] ..
start[j] + n_blocks[j] − 1. ``n_blocks[j] == 0`` means the server holds nothing (start is then 0).
Convert only at the edges (PETALS' ``--block_indices`` is 0-based, end-exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from swarmplan.perf import memory
from swarmplan.perf.concurrency import TargetR
from swarmplan.perf.model import PerfModel

MemoryModel = Literal["proposed", "petals"]


@dataclass(frozen=True)
class Placement:
    method: str
    start: np.ndarray
    n_blocks: np.ndarray
    cache_slots: np.ndarray
    memory_model: MemoryModel
    R: int | None = None
    bound_ms_per_token: float | None = None
    order: tuple[int, ...] | None = None
    info: dict = field(default_factory=dict)  # the method's diagnostics, for display; read-only
    r_rule: "TargetR | None" = None  # how R was chosen when the paper's rule chose it (docs/model.md §6)
    details: object | None = None  # a method's typed result beyond the placement (e.g. GBP-CR's ChainPlan)

    @property
    def end(self) -> np.ndarray:
        return np.where(self.n_blocks > 0, self.start + self.n_blocks - 1, -1)

    def coverage(self, L: int, live=None) -> np.ndarray:
        """Number of servers holding each block 1..L (only those where ``live`` is true, when given)."""
        cover = np.zeros(L + 2, dtype=np.int64)
        up = [True] * len(self.start) if live is None else live
        for s, m, u in zip(self.start.tolist(), self.n_blocks.tolist(), up):
            if m > 0 and u:
                cover[s] += 1
                cover[s + m] -= 1
        return np.cumsum(cover)[1 : L + 1]

    def petals_block_indices(self) -> list[str | None]:
        """PETALS ``--block_indices`` per server (0-based, end exclusive), None where a server holds nothing."""
        return [f"{s - 1}:{s - 1 + m}" if m > 0 else None for s, m in zip(self.start.tolist(), self.n_blocks.tolist())]


def slots_for(pm: PerfModel, n_blocks: np.ndarray, memory_model: MemoryModel) -> np.ndarray:
    """Cache slots of each server under the given memory model (docs/model.md §2.3–2.4)."""
    if memory_model == "petals" and pm.swarm.petals_reserve == "max_length":  # docs/model.md §17.3
        return memory.petals_pool_token_blocks(n_blocks, memory.petals_attn_cache_tokens(pm.swarm.model))
    if memory_model == "petals":
        return np.where(n_blocks > 0, memory.cache_slots_petals(n_blocks, pm.petals_cache_gb, pm.kv_gb), 0)
    return memory.cache_slots_proposed(pm.memory_gb, n_blocks, pm.block_gb, pm.kv_gb)
