"""What ``swarmplan split`` does, as plain data (docs/split.md §10): the single-server plan (knapsack DP vs
greedy vs all-on-server) with its simulation, or, for a swarm, the joint plan of k and the placement with
its simulation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmplan.perf import split_costs
from swarmplan.perf.model import PerfModel
from swarmplan.perf.timing import request_service_ms
from swarmplan.scenario.models import Scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import Workload, draw_workload
from swarmplan.sim.central import JffcDispatcher
from swarmplan.sim.result import SimResult
from swarmplan.sim.run import run_policy
from swarmplan.split.joint import (
    JointPlan,
    SwarmOption,
    chain_times_ms,
    client_time_ms,
    pair_times,
    plan_joint,
    swarm_for_blocks,
)
from swarmplan.split.model import SplitModel, build_split_model, server_decode_batches
from swarmplan.split.plan import SplitPlan, draw_requests, plan_window
from swarmplan.split.simulate import simulate_split


def streams(seed: int) -> list[np.random.Generator]:
    """Swarm draw, planning window, swarm-simulation workload: independent streams of one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def is_swarm(scenario: Scenario, pm: PerfModel) -> bool:
    """A swarm when the scenario has several servers and names none to serve the split alone."""
    return pm.n_servers > 1 and scenario.split is not None and scenario.split.server is None


def run_edge(
    scenario: Scenario, pm: PerfModel, sm: SplitModel, rng: np.random.Generator, requests: int | None = None
) -> tuple[SplitPlan, dict]:
    req = draw_requests(scenario, sm, rng, requests)
    plan = plan_window(sm, req)
    sims = {m: simulate_split(sm, req, r.choices, m).summary() for m, r in plan.results.items()}
    return plan, sims


@dataclass(frozen=True)
class RequestMix:
    """Each request's type, device class and device (indices)."""

    type_index: np.ndarray
    device_class: np.ndarray
    device_instance: np.ndarray


def typed_workload(sm: SplitModel, base: Workload, rng: np.random.Generator) -> tuple[Workload, RequestMix]:
    """The workload's arrivals and clients with each request's type (its lengths) and device class drawn by
    their shares from ``rng``."""
    n = base.n
    t_idx = rng.choice(len(sm.types), size=n, p=[t.share for t in sm.types])
    d_idx = rng.choice(len(sm.devices), size=n, p=[d.share for d in sm.devices])
    inst = np.array([rng.integers(sm.devices[d].count) for d in d_idx], dtype=np.int64)
    l_in = np.array([sm.types[t].input_tokens for t in t_idx], dtype=np.int64)
    l_out = np.array([sm.types[t].output_tokens for t in t_idx], dtype=np.int64)
    wl = Workload(base.arrival_ms, l_in, l_out, base.client, base.service_factor)
    return wl, RequestMix(t_idx.astype(np.int64), d_idx.astype(np.int64), inst)


def swarm_result_with_clients(
    pm: PerfModel, sm: SplitModel, opt: SwarmOption, wl: Workload, mix: RequestMix, name: str
) -> tuple[SimResult, np.ndarray]:
    """docs/split.md §9 — run the swarm simulator (JFFC on the usable chains, blocks k+1..L) with each session
    stretched by its client's time: the service factor is 1 + client time / the fastest usable chain's
    service at the request's lengths, exact on that chain (JFFC's first choice) and a little longer on slower
    ones, so KV slots are held for the client's steps too. Returns the result and each request's client time."""
    sub = swarm_for_blocks(pm, opt.k)
    chains = [ch for ch, ok in zip(opt.chain_list, opt.usable) if ok] or list(opt.chain_list)
    fastest = min(chains, key=lambda ch: ch.service_ms)
    client = np.array([client_time_ms(sm.types[t], sm.devices[d], opt.k) for t, d in zip(mix.type_index, mix.device_class)])
    chain_ms = {
        t: request_service_ms(*chain_times_ms(sub, fastest, sm.types[t]), sm.types[t].output_tokens)
        for t in set(mix.type_index.tolist())
    }
    factor = np.array([1.0 + c / chain_ms[t] for c, t in zip(client, mix.type_index.tolist())]) * wl.factors
    stretched = Workload(wl.arrival_ms, wl.input_tokens, wl.output_tokens, wl.client, factor)
    return run_policy(sub, opt.placement, stretched, JffcDispatcher(chains), 0.0, name), client


def swarm_split_metrics(
    pm: PerfModel,
    sm: SplitModel,
    res: SimResult,
    mix: RequestMix,
    decode_batch: np.ndarray,
    client_ms: np.ndarray | None = None,
    k: int = 0,
) -> dict:
    """docs/split.md §6.1 — server (swarm) and client work per request, requests within SLA and throughput at
    SLA of a swarm run; works for every method (client work 0 when the clients run nothing)."""
    wl = res.workload
    n = wl.n
    ok = np.zeros(n, dtype=bool)
    ttft, resp = res.ttft_ms, res.response_ms
    for r in range(n):
        t = sm.types[int(mix.type_index[r])]
        step = (resp[r] - ttft[r]) / max(t.output_tokens - 1, 1)
        ok[r] = ttft[r] <= t.sla_ttft_ms + 1e-9 and step <= t.sla_per_token_ms + 1e-9 and resp[r] <= t.sla_response_ms + 1e-9
    work = np.array(
        [
            float(
                np.sum(
                    split_costs.server_work_ms(
                        np.array(res.processed[r]),
                        pm.tau_in_for(int(wl.input_tokens[r]))[list(res.chains[r])],
                        pm.tau_ms[list(res.chains[r])],
                        int(wl.output_tokens[r]),
                        decode_batch[list(res.chains[r])],
                    )
                )
            )
            if res.chains[r]
            else 0.0
            for r in range(n)
        ]
    )
    client_work = np.array(
        [k * sm.devices[int(d)].work_ms(int(a), int(b)) for d, a, b in zip(mix.device_class, wl.input_tokens, wl.output_tokens)]
    )
    span_s = (float(np.max(wl.arrival_ms + resp)) - float(wl.arrival_ms.min())) / 1000.0
    return {
        "server_work_per_request_ms": float(work.mean()),
        "client_work_per_request_ms": float(client_work.mean()),
        "within_sla": int(ok.sum()),
        "within_sla_fraction": float(ok.mean()),
        "throughput_at_sla_per_s": float(ok.sum() / span_s) if span_s > 0 else 0.0,
    }


def simulate_swarm_option(
    scenario: Scenario,
    pm: PerfModel,
    sm: SplitModel,
    opt: SwarmOption,
    rng: np.random.Generator,
    decode_batch: np.ndarray,
    requests: int | None = None,
    name: str = "",
) -> dict:
    """The swarm with clients running k blocks, on the scenario's workload with types and devices drawn."""
    base = draw_workload(scenario.workload, pm.swarm.n_clients, rng, requests)
    wl, mix = typed_workload(sm, base, rng)
    res, client = swarm_result_with_clients(pm, sm, opt, wl, mix, name)
    out = {"method": name, "k": opt.k, "requests": wl.n}
    out.update(swarm_split_metrics(swarm_for_blocks(pm, opt.k), sm, res, mix, decode_batch, client, opt.k))
    out.update(wait_mean_s=float(res.wait_ms.mean() / 1000), response_mean_s=float(res.response_ms.mean() / 1000))
    return out


def swarm_json(pm: PerfModel, sm: SplitModel, jp: JointPlan, sims: dict) -> dict:
    best = jp.best
    sub = swarm_for_blocks(pm, best.k)
    chains = [ch for ch, ok in zip(best.chain_list, best.usable) if ok]
    types = []
    for t in sm.types:
        for d in sm.devices:
            if t.share * d.share <= 0:
                continue
            worst = max((pair_times(sub, ch, t, d, best.k) for ch in chains), key=lambda p: p.response_ms)
            types.append(
                {
                    "type": t.name,
                    "device": d.name,
                    "share": t.share * d.share,
                    "sla": t.sla_text(),
                    "split": {"client_prefix": best.k, "client_suffix": 0, "server_blocks": sm.L - best.k},
                    "response_s": worst.response_ms / 1000,
                    "ttft_s": worst.ttft_ms / 1000,
                    "token_ms": worst.token_ms,
                    "sla_response_s": _finite(t.sla_response_ms, 1000),
                    "sla_ttft_s": _finite(t.sla_ttft_ms, 1000),
                    "sla_per_token_ms": _finite(t.sla_per_token_ms, 1),
                    "client_work_ms": best.k * d.work_ms(t.input_tokens, t.output_tokens),
                }
            )
    return {
        "mode": "swarm",
        "blocks": sm.L,
        "k_max": jp.k_max,
        "server_work_fraction": jp.server_work_fraction,
        "throughput_gain_over_greedy": jp.throughput_gain_over_greedy,
        "chosen_k": best.k,
        "greedy_k": jp.greedy.k,
        "capacity_at_sla_per_s": {
            "joint": best.capacity_at_sla_per_s,
            "greedy": jp.greedy.capacity_at_sla_per_s,
            "all-on-swarm": jp.all_on_swarm.capacity_at_sla_per_s,
        },
        "k_sweep": [
            {
                "k": o.k,
                "c": o.c,
                "chains": o.chains,
                "usable_chains": int(sum(o.usable)),
                "capacity_per_s": o.capacity_per_s,
                "capacity_at_sla_per_s": o.capacity_at_sla_per_s,
                "swarm_work_per_request_ms": o.swarm_work_ms,
                "worst_response_s": o.worst_response_s,
                "note": o.note,
            }
            for o in jp.options
        ],
        "types": types,
        "simulation": sims,
    }


def run_split(scenario: Scenario, base_dir: Path | None = None, seed: int = 0, requests: int | None = None) -> dict:
    """The whole ``swarmplan split`` result as one JSON-able dict (see docs/split.md §10 for the fields)."""
    swarm_rng, window_rng, _ = streams(seed)
    pm = PerfModel.from_swarm(realize(scenario, swarm_rng, base_dir))
    sm = build_split_model(scenario, pm)
    if not is_swarm(scenario, pm):
        plan, sims = run_edge(scenario, pm, sm, window_rng, requests)
        return {"mode": "edge", "scenario": scenario.name, "seed": seed, **plan.to_json(), "simulation": sims}
    batch = server_decode_batches(scenario, pm)
    jp = plan_joint(pm, sm.types, sm.devices, batch)
    sims = {}
    for name, opt in (("joint", jp.best), ("greedy", jp.greedy), ("all-on-swarm", jp.all_on_swarm)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1]).spawn(1)[0])  # same arrivals for every option
        sims[name] = simulate_swarm_option(scenario, pm, sm, opt, rng, batch, requests, name)
    return {"scenario": scenario.name, "seed": seed, **swarm_json(pm, sm, jp, sims)}


def _finite(x: float, scale: float):
    return x / scale if np.isfinite(x) else None
