"""The paper's rule for the target concurrency R (docs/model.md §6; Sun et al. 2025, §6)."""

from __future__ import annotations

from swarmplan.perf.chains import block_chains, shortest_chain_jk
from swarmplan.perf.concurrency import TargetR, r_max, target_concurrency
from swarmplan.perf.model import PerfModel
from swarmplan.placement.cgbp import cg_bp


def single_request_ms(pm: PerfModel) -> float:
    """docs/model.md §6 step 1 — T₁: CG-BP with R = 1 and no per-GPU clamp, then the fastest whole-request
    chain (edge weight = hop service time) plus the initial delay; the worst client when there are several."""
    pl = cg_bp(pm, 1, clamp=False)
    bc = block_chains(pl.start, pl.n_blocks, pm.L)  # hop weights depend on (server, k) only: §8.2
    worst = 0.0
    for c in range(pm.rtt_ms.shape[0]):
        cost, _, _ = shortest_chain_jk(bc, pm.hop_service(c, bc.slot_server, bc.slot_k))
        worst = max(worst, cost)
    return worst + pm.swarm.timing.initial_delay_ms


def paper_target(pm: PerfModel, rate_per_s: float) -> TargetR:
    """R = min(round(λT₁ + √(λT₁)), R_max)."""
    t1 = single_request_ms(pm)
    rmax = r_max(pm.memory_gb, pm.block_gb, pm.kv_gb, pm.L)
    return TargetR(target_concurrency(rate_per_s / 1000.0, t1, max(rmax, 1)), t1, rmax)
