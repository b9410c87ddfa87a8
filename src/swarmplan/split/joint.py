"""Joint planning with a swarm (docs/split.md §9): every client runs the first k blocks itself and the swarm
is placed over blocks k+1..L only — GBP-CR with its choice of c and GCA chains (docs/model.md §14) on the
shortened model — for every k the devices and SLAs allow; the k with the largest swarm capacity under the
SLA wins. Compared with k = 0 (all on the swarm) and with greedy (the largest k every client can take).

One k for every client class: a swarm placed over k+1..L cannot serve a client that runs fewer blocks, and
a client that runs more would enter chains mid-server, which GCA's chain capacities do not describe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.perf import split_costs
from swarmplan.perf.concurrency import cgbp_num_blocks
from swarmplan.perf.model import PerfModel
from swarmplan.perf.timing import (
    chain_first_token_ms,
    chain_token_ms,
    request_service_ms,
)
from swarmplan.placement.gbpcr import gbp_cr
from swarmplan.placement.gbpcr_plan import chains_for, max_reservation
from swarmplan.placement.types import Placement
from swarmplan.routing.gca import Chain
from swarmplan.split.model import Device, RequestType


def swarm_for_blocks(pm: PerfModel, k: int) -> PerfModel:
    """The swarm's performance model when clients run blocks 1..k: the same servers and times, L − k blocks
    (every block has the same size and cost, so which k blocks leave does not matter to the servers)."""
    return dataclasses.replace(pm, L=pm.L - k)


def chain_times_ms(pm: PerfModel, chain: Chain, t: RequestType) -> tuple[float, float]:
    """docs/model.md §3.3 — (t_1, t_tok) of a chain at the type's lengths, for the slowest client."""
    first = max(
        chain_first_token_ms(
            pm.rtt_in_for(t.input_tokens)[c, list(chain.servers)],
            pm.tau_in_for(t.input_tokens)[list(chain.servers)],
            chain.blocks,
        )
        for c in range(pm.rtt_ms.shape[0])
    )
    tok = max(
        chain_token_ms(pm.rtt_ms[c, list(chain.servers)], pm.tau_ms[list(chain.servers)], chain.blocks)
        for c in range(pm.rtt_ms.shape[0])
    )
    return first, tok


def client_time_ms(t: RequestType, d: Device, k: int) -> float:
    """docs/split.md §9 — the client's k blocks over the whole request: k·(τ^in_c + (l_out − 1) τ_c)."""
    return k * d.work_ms(t.input_tokens, t.output_tokens)


@dataclass(frozen=True)
class PairTimes:
    """One (request type, device class) on one chain with k client blocks (ms)."""

    ttft_ms: float
    token_ms: float
    response_ms: float

    def meets(self, t: RequestType) -> bool:
        return (
            self.ttft_ms <= t.sla_ttft_ms + 1e-9
            and self.token_ms <= t.sla_per_token_ms + 1e-9
            and self.response_ms <= t.sla_response_ms + 1e-9
        )


def pair_times(pm: PerfModel, chain: Chain, t: RequestType, d: Device, k: int) -> PairTimes:
    """docs/split.md §9 — the client's k blocks run before the chain on every step (its hidden state then
    goes to the first server exactly as PETALS' client sends it anyway), plus session set-up d_init."""
    first, tok = chain_times_ms(pm, chain, t)
    ttft = k * d.prefill_ms(t.input_tokens) + first + pm.swarm.timing.initial_delay_ms
    step = k * d.decode_ms + tok
    return PairTimes(ttft, step, request_service_ms(ttft, step, t.output_tokens))


@dataclass(frozen=True)
class SwarmOption:
    """The swarm planned for blocks k+1..L."""

    k: int
    c: int | None  # GBP-CR's cache reservation
    placement: Placement | None  # over blocks 1..L−k of the shortened model (block b here is block k+b)
    chain_list: tuple[Chain, ...]
    usable: tuple[bool, ...]  # per chain: every (type, device) with traffic meets its SLA on it
    capacity_per_s: float  # ν: jobs per second all chains complete when full
    capacity_at_sla_per_s: float  # ν over the usable chains
    swarm_work_ms: float  # GPU time per request on the swarm (mean over the mix, capacity-weighted chains)
    worst_response_s: float  # slowest pair on the usable chains (on all chains when none is usable)
    note: str = ""

    @property
    def chains(self) -> int:
        return len(self.chain_list)


def _mix(types, devices):
    return [(t, d, t.share * d.share) for t in types for d in devices if t.share * d.share > 0]


def _chain_numbers(sub: PerfModel, ch: Chain, k: int, mix, decode_batch) -> tuple[bool, float, float, float]:
    """(every pair meets its SLA, the chain's rate c_k/E[T] for the mix, its swarm work per request, worst response)."""
    times = [(pair_times(sub, ch, t, d, k), t) for t, d, _ in mix]
    ok = all(pt.meets(t) for pt, t in times)
    worst = max(pt.response_ms for pt, _ in times)  # over the pairs
    # A session holds its chain place for the client's steps too: the chain's rate is one over the mean of
    # (chain service + client time) over the mix.
    mean_ms = sum(
        w * (request_service_ms(*chain_times_ms(sub, ch, t), t.output_tokens) + client_time_ms(t, d, k)) for t, d, w in mix
    )
    js = list(ch.servers)
    work = sum(
        w
        * float(
            np.sum(
                split_costs.server_work_ms(
                    np.array(ch.blocks), sub.tau_in_for(t.input_tokens)[js], sub.tau_ms[js], t.output_tokens, decode_batch[js]
                )
            )
        )
        for t, _, w in mix
    )
    return ok, ch.capacity * 1000.0 / mean_ms, work, worst


def evaluate_k(pm: PerfModel, k: int, types, devices, decode_batch: np.ndarray) -> SwarmOption:
    """docs/split.md §9 — the swarm over blocks k+1..L: for every cache reservation c, GBP-CR places every
    server (no rate target, so capacity is not capped by it) and GCA composes chains; the c whose usable
    chains (every pair within its SLA) have the largest total rate ν wins."""
    sub = swarm_for_blocks(pm, k)
    mix = _mix(types, devices)
    best: SwarmOption | None = None
    seen: set = set()
    reason = "no cache reservation c gives a chain"
    cs = np.arange(1, max_reservation(sub) + 1)
    # GBP-CR's placement (and so GCA's chains) depends on c only through m_j(c) (docs/model.md §14.1): try the
    # smallest c of each distinct m vector, which is also the one kept on ties.
    m_all = cgbp_num_blocks(sub.memory_gb, sub.block_gb, sub.kv_gb, cs[:, None], sub.L, sub.max_blocks)
    first = np.ones(len(cs), dtype=bool)
    first[1:] = (m_all[1:] != m_all[:-1]).any(axis=1)
    for c in cs[first].tolist():
        try:
            pl = gbp_cr(sub, c, float("inf"))
        except SwarmplanError as err:
            reason = err.problem
            continue
        key = (pl.start.tobytes(), pl.n_blocks.tobytes())
        if key in seen:
            continue
        seen.add(key)
        chains = chains_for(sub, pl)
        if not chains:
            continue
        nums = [_chain_numbers(sub, ch, k, mix, decode_batch) for ch in chains]
        usable = np.array([x[0] for x in nums], dtype=bool)
        rates = np.array([x[1] for x in nums])
        at_sla = float(rates[usable].sum())
        weights = rates * usable if usable.any() else rates
        work = float(np.dot(weights, [x[2] for x in nums]) / weights.sum())
        worst = max(x[3] for x, u in zip(nums, usable) if u) if usable.any() else max(x[3] for x in nums)
        opt = SwarmOption(k, c, pl, tuple(chains), tuple(bool(u) for u in usable), float(rates.sum()), at_sla, work, worst / 1000)
        if best is None or (opt.capacity_at_sla_per_s, opt.capacity_per_s) > (best.capacity_at_sla_per_s, best.capacity_per_s):
            best = opt
    if best is None:
        return SwarmOption(k, None, None, (), (), 0.0, 0.0, float("nan"), float("nan"), note=reason)
    return best


@dataclass(frozen=True)
class JointPlan:
    options: list[SwarmOption]  # one per k = 0..k_max
    best: SwarmOption
    greedy: SwarmOption
    all_on_swarm: SwarmOption
    k_max: int

    @property
    def throughput_gain_over_greedy(self) -> float:
        g = self.greedy.capacity_at_sla_per_s
        return self.best.capacity_at_sla_per_s / g - 1.0 if g > 0 else float("inf")

    @property
    def server_work_fraction(self) -> float:
        return self.best.swarm_work_ms / self.all_on_swarm.swarm_work_ms


def plan_joint(pm: PerfModel, types, devices, decode_batch: np.ndarray) -> JointPlan:
    """docs/split.md §9 — evaluate k = 0 .. min(device memory, L − 1) and choose the largest capacity under
    the SLA (ties: the smaller k, the less client work)."""
    in_use = [d for d in devices if d.share > 0]
    k_max = min(min(d.max_blocks for d in in_use), pm.L - 1)
    options = [evaluate_k(pm, k, types, in_use, decode_batch) for k in range(k_max + 1)]
    best = max(options, key=lambda o: (o.capacity_at_sla_per_s, -o.k))
    if best.capacity_at_sla_per_s <= 0:
        raise SwarmplanError(
            "split.request_types",
            f"no split k in 0..{k_max} gives the swarm a chain on which every request type meets its SLA",
            "relax the SLAs or add faster servers",
        )
    feasible = [o for o in options if o.capacity_at_sla_per_s > 0]
    greedy = max(feasible, key=lambda o: o.k)
    return JointPlan(options, best, greedy, options[0], k_max)
