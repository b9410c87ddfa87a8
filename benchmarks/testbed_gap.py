"""swarmplan's prediction for the follow-up's real PETALS testbed, and what each fidelity knob changes.

Run: PYTHONPATH=src python benchmarks/testbed_gap.py [--runs N]
Prints (1) service, waiting and response time (mean, p95) per method on the built-in `testbed-petals-mig9`,
with each method's change against PETALS beside the testbed's published Table I changes (Sun, He, Hou 2026,
per ../shared/reference/related-work.md §1.9); (2) the mechanism ladder: starting from the testbed scenario
with every knob of docs/model.md §17 undone, switching them on one at a time; (3) single-knob sensitivities.
The trace replay has fixed arrivals and the servers are listed explicitly, so one run is deterministic.
"""

from __future__ import annotations

import argparse

import numpy as np

from swarmplan.experiments.compare import run_seeds
from swarmplan.methods.gbpcr import plan_chains
from swarmplan.methods.registry import MethodContext, get_methods
from swarmplan.perf.model import PerfModel
from swarmplan.placement.gbpcr import whole_request_times
from swarmplan.placement.types import Placement, slots_for
from swarmplan.routing.gca import gca
from swarmplan.scenario.loader import load_scenario
from swarmplan.scenario.realize import realize
from swarmplan.scenario.workload import draw_workload
from swarmplan.sim.central import JffcDispatcher
from swarmplan.sim.run import run_policy

SCENARIO = "testbed-petals-mig9"
METHODS = ["petals", "petals-retry", "cg-bprr", "gbp-cr", "cgbp-jffc"]
# Table I of the follow-up, relative to PETALS (related-work.md §1.9): mean response, mean wait, p95 response.
PUBLISHED = {"cg-bprr": (-36.9, -47.9, -35.5), "jffc-only": (-68.2, -93.8, -67.7), "gbp-cr": (-76.8, -97.5, -77.8)}

# Every knob of docs/model.md §17 undone: the scenario as swarmplan modelled it before (18 ms added once per
# hop to the raw RTT, LLaMA-2-7B fp16 sizes, PETALS' HEAD 4096-token cache sized for 4096-token sessions).
UNDONE = [
    "network.netem=null",
    "timing.overhead_ms=18",
    "timing.input_overhead_base_ms=18",
    "model.block_gb=null",
    "model.kv_bytes_per_token_per_block=null",
    "model.attn_cache_tokens=4096",
    "workload.petals_reserve=cache_tokens",
    "network.bandwidth_mbps=null",
]
LADDER = [
    ("all knobs undone (swarmplan's earlier model on the testbed's servers)", []),
    (
        "+ netem links: RTT/2 + 18 ms, one delayed direction (§17.1)",
        ["network.netem={overhead_ms: 18, delayed_directions: 1}", "timing.overhead_ms=0", "timing.input_overhead_base_ms=0"],
    ),
    (
        "+ testbed fixtures: 0.21 GB per block, 0.065 GB cache per block per job",
        ["model.block_gb=0.21", "model.kv_bytes_per_token_per_block=15869.140625"],
    ),
    ("+ PETALS 2.2.0 attention cache: 8192 tokens per block", ["model.attn_cache_tokens=8192"]),
    ("+ PETALS sessions reserve their max length l_in + l_out (§17.3)", ["workload.petals_reserve=max_length"]),
    ("+ prompt activations over 650.8 Mbit/s client links, client relay (§17.2)", ["network.bandwidth_mbps=650.8"]),
]
SENSITIVITY = [
    ("netem on both directions (RTT + 36 ms round trip)", ["network.netem.delayed_directions=2"]),
    ("no activation transfer (veth at memory speed)", ["network.bandwidth_mbps=null"]),
    ("PETALS' stale view, announced every 120 s (§17.5; no bans, servers in phase)", ["timing.petals_view_period_ms=120000"]),
    ("PETALS' stale view, every 60 s (the client's refresh period)", ["timing.petals_view_period_ms=60000"]),
    (
        "PETALS' stale view: announced every 120 s, client refresh 60 s, bans 15 s doubling (§17.5)",
        ["timing.petals_view_period_ms=120000", "timing.petals_refresh_ms=60000", "timing.petals_ban_ms=15000"],
    ),
    (
        "BPRR's PETALS overheads: o = 100 ms per decode step, 67 ms per prefill, per hop",
        ["timing.overhead_ms=100", "timing.input_overhead_base_ms=67"],
    ),
    (
        (
            "PETALS HEAD attention cache (4096 tokens), sessions sized 4096 (a max-length reservation would reject "
            "the 17 % of requests longer than 4096 tokens)"
        ),
        ["model.attn_cache_tokens=4096", "workload.petals_reserve=cache_tokens"],
    ),
]


def jffc_only(pm: PerfModel, workload) -> dict:
    """The testbed's "JFFC only" benchmark (benchmarks/jffc_only.py): the whole model on every server, one
    single-server chain each with capacity ⌊(M − s_m L)/(s_c L)⌋ (GCA gives exactly that), JFFC dispatch."""
    n = np.full(pm.n_servers, pm.L, dtype=np.int64)
    pl = Placement("jffc-only", np.ones(pm.n_servers, dtype=np.int64), n, slots_for(pm, n, "proposed"), "proposed")
    tau_c, tau_p = whole_request_times(pm)
    return _times(run_policy(pm, pl, workload, JffcDispatcher(gca(pl, pm.L, tau_c, tau_p)), 0.0, "jffc-only"))


def _times(result) -> dict:
    svc = result.prefill_ms + result.decode_ms
    out = result.summary()
    out.update(service_p95_s=float(np.percentile(svc, 95) / 1000), wait_p95_s=float(np.percentile(result.wait_ms, 95) / 1000))
    return out


def predict(sets: list[str], methods=METHODS, extras: bool = False, run: int = 0) -> dict[str, dict]:
    """One run as ``compare`` does it (same seeds), keeping each method's per-request records. ``extras``
    adds the testbed's "JFFC only" and GBP-CR with the testbed's c = 35."""
    sc, base = load_scenario(SCENARIO, sets)
    swarm_rng, workload_rng, method_rng = run_seeds(0, run)
    pm = PerfModel.from_swarm(realize(sc, swarm_rng, base))
    workload = draw_workload(sc.workload, pm.swarm.n_clients, workload_rng, None, base)
    ctx = MethodContext(pm, method_rng, sc.workload.rate_per_s, sc.placement.R, "petals")
    out = {}
    for m in get_methods(methods):
        placement, policy = m.build(ctx)
        out[m.name] = _times(run_policy(pm, placement, workload, policy, 0.0, m.name))
        if m.name == "gbp-cr":
            out[m.name]["c"] = ctx.chain_plan.c
    if extras:
        plan = plan_chains(pm, sc.workload.rate_per_s, c=35)
        out["gbp-cr c=35"] = _times(run_policy(pm, plan.placement, workload, JffcDispatcher(plan.chains), 0.0, "gbp-cr"))
        out["gbp-cr c=35"]["c"] = 35
        out["jffc-only"] = jffc_only(pm, workload)
    return out


def change(s: dict, m: str, key: str, ref: str = "petals-retry") -> float:
    return 100.0 * (s[m][key] / s[ref][key] - 1.0) if s[ref][key] > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.parse_args()
    s = predict([], extras=True)
    print(f"== {SCENARIO}: predicted times (s) and change against petals-retry (PETALS' real client)")
    print(
        f"{'method':13s} {'svc mean':>8s} {'svc p95':>8s} {'wait':>8s} {'wait p95':>8s} {'resp':>8s} {'resp p95':>8s}"
        f"  {'Δresp':>7s} {'Δwait':>7s} {'Δp95':>7s}   published Δresp/Δwait/Δp95"
    )
    for m, v in s.items():
        pub = PUBLISHED.get(m.split()[0])
        pub_s = "   ".join(f"{x:+.1f}%" for x in pub) if pub else ("(PETALS)" if m == "petals-retry" else "")
        print(
            f"{m:13s} {v['service_s']:8.3f} {v.get('service_p95_s', float('nan')):8.3f} {v['wait_s']:8.3f} "
            f"{v.get('wait_p95_s', float('nan')):8.3f} {v['response_mean_s']:8.3f} {v['response_p95_s']:8.3f}  "
            f"{change(s, m, 'response_mean_s'):+6.1f}% {change(s, m, 'wait_s'):+6.1f}% "
            f"{change(s, m, 'response_p95_s'):+6.1f}%   {pub_s}"
        )
    ratio = s["petals-retry"]["response_mean_s"] / s["gbp-cr"]["response_mean_s"]
    print(f"petals-retry / gbp-cr mean response: {ratio:.2f}x (testbed: 1/(1-0.768) = {1 / 0.232:.2f}x)")

    print("\n== mechanism ladder (cumulative): petals-retry, cg-bprr, gbp-cr mean response (s) and ratios")
    sets = list(UNDONE)
    prev = None
    for label, add in LADDER:
        sets = sets + add
        v = predict(sets, ["petals-retry", "cg-bprr", "gbp-cr"])
        r = v["petals-retry"]["response_mean_s"] / v["gbp-cr"]["response_mean_s"]
        step = "" if prev is None else f" (x{r / prev:.2f})"
        prev = r
        print(
            f"{label}\n   petals-retry {v['petals-retry']['service_s']:.3f} svc / {v['petals-retry']['response_mean_s']:.3f}"
            f" resp; cg-bprr {v['cg-bprr']['response_mean_s']:.3f} ({change(v, 'cg-bprr', 'response_mean_s'):+.1f}%);"
            f" gbp-cr {v['gbp-cr']['service_s']:.3f} svc / {v['gbp-cr']['response_mean_s']:.3f} resp "
            f"({change(v, 'gbp-cr', 'response_mean_s'):+.1f}%, c={v['gbp-cr']['c']}); ratio {r:.2f}x{step}"
        )

    print("\n== single-knob sensitivities from the testbed scenario")
    for label, add in SENSITIVITY:
        v = predict(add, ["petals-retry", "cg-bprr", "gbp-cr"])
        r = v["petals-retry"]["response_mean_s"] / v["gbp-cr"]["response_mean_s"]
        print(
            f"{label}: petals-retry {v['petals-retry']['response_mean_s']:.3f}, cg-bprr "
            f"{change(v, 'cg-bprr', 'response_mean_s'):+.1f}%, gbp-cr {change(v, 'gbp-cr', 'response_mean_s'):+.1f}%"
            f" (c={v['gbp-cr']['c']}); ratio {r:.2f}x"
        )


if __name__ == "__main__":
    main()
