"""Measured vs predicted: run a scenario's requests on real servers and in the simulator on the same inputs
(docs/runtime.md §6).

Same swarm draw, same placement and policy object, same arrivals and lengths, the same RTTs (emulated on
every link), the GPU times and per-hop overheads fitted on this machine (runtime.calibrate) — then the
mean absolute percentage error of response time, per-token time and TTFT per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.runtime.calibrate import Calibration, calibrate
from swarmplan.runtime.host_load import autogroup_enabled, host_cores
from swarmplan.runtime.host_noise import forward_noise
from swarmplan.runtime.link_costs import distinct_rtts, measure_link_costs
from swarmplan.runtime.live_run import WARM_POOL, LiveRun, Outage, predictor, run_live
from swarmplan.runtime.model import LlamaArch, arch_from_model_params, build_reference, check_fits_memory, reference_generate
from swarmplan.runtime.wire import Link
from swarmplan.sim.step_level import StepOutage, simulate_steps

WAITED_MS = 10.0  # a request "waited" when it started this much after its arrival (docs/runtime.md §6)


@dataclass
class Validation:
    method: str
    scenario: str
    calibration: Calibration
    live: LiveRun
    sim: object  # SimResult
    rows: object  # pandas DataFrame, one row per request
    tokens_identical: bool
    failures_simulated: bool
    prediction: str = "paper"  # which prediction "predicted_*" and "error" are: "step" or "paper" (§8.6)
    cores: int = 0
    links: object = None  # runtime.link_costs.LinkCosts measured before the run (step-level prediction only)
    host_noise: dict | None = None  # runtime.host_noise.forward_noise after the run (step-level prediction only)

    def summary(self) -> dict:
        df = self.rows
        done = df[~df["lost"]]
        return {
            "method": self.method,
            "scenario": self.scenario,
            "requests": int(len(df)),
            "completed": int(len(done)),
            "lost": int(df["lost"].sum()),
            "tokens_identical": bool(self.tokens_identical),
            # Waited for a slot: longer than the client's own dispatch latency (≤ 5 ms measured on a 2-core host)
            "waited": int((done["measured_wait_ms"] > WAITED_MS).sum()),
            "server_failures": len(self.live.outages),
            "failures_simulated": self.failures_simulated,
            "prediction": self.prediction,
            "error": _errors(done, "predicted"),
            "error_paper_model": _errors(done, "paper"),
            "error_step_level": _errors(done, "step") if "step_response_ms" in done else None,
            "measured": {k: float(done[f"measured_{k}_ms"].mean()) for k in ("response", "per_token", "ttft")},
            "predicted": {k: float(done[f"predicted_{k}_ms"].mean()) for k in ("response", "per_token", "ttft")},
            "calibration": {k: v for k, v in self.calibration.to_json().items() if k not in ("arch", "samples")},
            "link_costs": self.links.to_json() if self.links is not None else None,
            "server_forwards_in_place": {
                str(j): dict(l_in=v[0], prefill_cpu_ms=v[1], decode_cpu_ms=v[2]) for j, v in self.live.server_forwards.items()
            },
            "host_noise": self.host_noise,
            "wall_s": round(self.live.wall_s, 3),
            "host": {
                "cores": self.cores,
                "load_average": [round(x, 2) for x in self.live.load_average],
                "other_runnable_mean": round(self.live.other_runnable_mean, 2),
            },
        }


def _errors(done, prefix: str) -> dict:
    return {f"{k}_mape": mape(done[f"measured_{k}_ms"], done[f"{prefix}_{k}_ms"]) for k in ("response", "per_token", "ttft")}


def tpot(response_ms: float, ttft_ms: float, l_out: int) -> float:
    """docs/runtime.md §6 — time per output token after the first: (response − TTFT) / (l_out − 1), the decode
    speed a user sees once the answer streams. Worked: response 1000 ms, TTFT 100 ms, 10 tokens → 100 ms.
    A one-token answer has no decode step: NaN (left out of the error)."""
    return (response_ms - ttft_ms) / (l_out - 1) if l_out > 1 else math.nan


def mape(measured, predicted) -> float:
    """docs/runtime.md §6 — mean |measured − predicted| / measured, as a fraction (0.05 = 5 %)."""
    m, p = np.asarray(measured, float), np.asarray(predicted, float)
    keep = np.isfinite(m) & np.isfinite(p)
    m, p = m[keep], p[keep]
    if len(m) == 0:
        return float("nan")
    return float(np.mean(np.abs(m - p) / m))


def apply_calibration(sc, cal: Calibration):
    """The scenario with every GPU type's times and the per-hop overheads replaced by the fitted ones (the
    servers all run on this machine's device); memory and block clamps stay as the scenario says."""
    gpus = {}
    for name, spec in sc.gpus.items():
        d = spec.model_dump()
        d.update(
            preset=None,
            timing="fitted",
            decode_ms_per_block=cal.decode_ms_per_block,
            prefill_ms_per_token_per_block=cal.prefill_ms_per_token_per_block,
            prefill_ms_per_block=cal.prefill_ms_per_block,
        )
        if d.get("memory_gb") is None:
            raise SwarmplanError(f"gpus.{name}.memory_gb", "missing", "give the memory the runtime server emulates")
        gpus[name] = type(spec)(**d)
    timing = sc.timing.model_copy(update=cal.timing_entry())
    return sc.model_copy(update=dict(gpus=gpus, timing=timing))


def scenario_arch(sc, base_dir=None, seed: int = 0) -> LlamaArch:
    from swarmplan.scenario.realize import resolve_model

    return arch_from_model_params(resolve_model(sc), seed)


def outages_from(schedule) -> list[Outage]:
    """The simulator's churn schedule (docs/model.md §16) as process kills and restarts: each failure paired
    with the same server's next return."""
    out: list[Outage] = []
    open_: dict[int, Outage] = {}
    for ev in schedule.events:
        if not ev.up:
            open_[ev.server] = Outage(ev.server, ev.time_ms)
            out.append(open_[ev.server])
        elif ev.server in open_:
            open_.pop(ev.server).return_ms = ev.time_ms
    return out


def run_validation(
    sc,
    base_dir,
    method: str,
    n_requests: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    calibration: Calibration | None = None,
    host: str = "127.0.0.1",
    bandwidth_mbit_s: float | None = None,
    check_tokens: bool = True,
    prediction: str = "auto",
    log=None,
) -> Validation:
    """docs/runtime.md §6, §8.6. ``prediction``: "step" (the step-level simulator, sim.step_level), "paper" (the
    paper's model, sim.run.run_policy) or "auto" (step on a CPU device, paper on CUDA, where one forward at a
    time and shared host cores are not what limits a step). Both are always computed when step is chosen."""
    import pandas as pd

    from swarmplan.methods.registry import MethodContext, parse_method
    from swarmplan.perf.model import PerfModel
    from swarmplan.scenario.realize import realize
    from swarmplan.scenario.workload import draw_workload
    from swarmplan.sim.churn import churn_schedule
    from swarmplan.sim.run import run_policy

    log = log or (lambda msg: None)
    if prediction not in ("auto", "step", "paper"):
        raise SwarmplanError("--prediction", f"unknown prediction {prediction!r}", "use auto, step or paper")
    if prediction == "auto":
        prediction = "paper" if device.startswith("cuda") else "step"
        if calibration is not None and prediction == "step" and not np.isfinite(calibration.decode_cpu_block_ms):
            log("the calibration has no CPU-time fit (written by an older version): predicting with the paper model")
            prediction = "paper"
    chosen = parse_method(method)
    swarm_ss, wl_ss, method_ss, prompt_ss, churn_ss = np.random.SeedSequence(seed).spawn(5)
    swarm_rng, wl_rng, prompt_rng, churn_rng = (np.random.default_rng(s) for s in (swarm_ss, wl_ss, prompt_ss, churn_ss))
    arch = scenario_arch(sc, base_dir, seed)
    n_servers = sc.servers.count if not isinstance(sc.servers, list) else len(sc.servers)
    check_fits_memory(arch, n_servers + 1)
    if calibration is None:
        log("calibrating on this machine …")
        calibration = calibrate(arch, device)
    sc = apply_calibration(sc, calibration)
    swarm = realize(sc, swarm_rng, base_dir)
    pm = PerfModel.from_swarm(swarm)

    def build():
        """The method's placement and a fresh policy object, drawn the same way each time, so the paper model,
        the live client and the step-level prediction each start from the same policy state."""
        return chosen.build(MethodContext(pm, np.random.default_rng(method_ss), sc.workload.rate_per_s))

    placement, policy = build()
    if placement.coverage(pm.L).min() < 1:
        raise SwarmplanError("placement", f"{method}'s placement leaves blocks uncovered", "give the servers more memory")
    workload = draw_workload(sc.workload, swarm.n_clients, wl_rng, n_requests, base_dir)
    prompts = [prompt_rng.integers(0, arch.vocab, size=int(l)).tolist() for l in workload.input_tokens]
    # The same failures in both: the scenario's churn schedule; returning servers keep their span (no re-join).
    schedule = churn_schedule(sc.churn, swarm.server_names, float(workload.arrival_ms[-1]), churn_rng)
    outages = outages_from(schedule)
    sim = run_policy(pm, placement, workload, policy, 0.0, method, churn=schedule if schedule else None)
    links = None
    if prediction == "step":
        used = pm.swarm.rtt_raw_client_ms[:, placement.n_blocks > 0]
        log(f"measuring the hop costs of {len(distinct_rtts(used))} distinct links …")
        links = measure_link_costs(arch, used, device, host, bandwidth_mbit_s=bandwidth_mbit_s)
    log(f"starting {int((placement.n_blocks > 0).sum())} server processes …")
    live = run_live(
        arch,
        pm,
        placement,
        build()[1],
        workload,
        prompts,
        device=device,
        host=host,
        outages=outages,
        bandwidth_mbit_s=bandwidth_mbit_s,
        log=log,
    )
    cores = host_cores()
    step = None
    if prediction == "step":
        log("step-level prediction …")
        step = predict_steps(
            pm, placement, build()[1], workload, prompts, calibration, arch, live, outages, bandwidth_mbit_s, cores, links
        )
    # The host's own noise on identical request-sized work, to read per-request errors against (§8.7)
    noise = None
    if prediction == "step":
        blocks, l_in, l_out = int(placement.n_blocks.max()), int(workload.input_tokens.max()), int(workload.output_tokens.max())
        noise = forward_noise(arch, blocks, l_in, l_out, device=device)
    identical = True
    if check_tokens:
        ref = build_reference(arch, device)
        want: dict[tuple, list[int]] = {}
        for rec in live.records:
            if rec.lost:
                continue
            key = (tuple(rec.prompt), rec.output_tokens)
            if key not in want:
                want[key] = reference_generate(ref, rec.prompt, rec.output_tokens)
            identical &= rec.tokens == want[key]
    rows = []
    for r, rec in enumerate(live.records):
        l_out = int(workload.output_tokens[r])
        resp = rec.response_ms if not rec.lost else math.nan
        rows.append(
            dict(
                request=r,
                arrival_ms=rec.arrival_ms,
                input_tokens=int(workload.input_tokens[r]),
                output_tokens=l_out,
                lost=rec.lost,
                failures=rec.failures,
                refusals=rec.refusals,
                chain_paper="-".join(map(str, sim.chains[r])),
                chain_measured="-".join(map(str, rec.chains[0])) if rec.chains else "",
                measured_wait_ms=rec.start_ms - rec.arrival_ms,
                measured_ttft_ms=rec.ttft_ms,
                measured_per_token_ms=tpot(resp, rec.ttft_ms, l_out),
                measured_response_ms=resp,
                measured_server_cpu_ms=rec.server_cpu_ms,
                measured_server_wall_ms=rec.server_wall_ms,
                paper_wait_ms=float(sim.wait_ms[r]),
                paper_ttft_ms=float(sim.ttft_ms[r]),
                paper_per_token_ms=tpot(float(sim.response_ms[r]), float(sim.ttft_ms[r]), l_out),
                paper_response_ms=float(sim.response_ms[r]),
            )
        )
        if step is not None:
            s = step[r]
            rows[-1].update(
                chain_step="-".join(map(str, s.chains[0])) if s.chains else "",
                step_wait_ms=s.start_ms - s.arrival_ms,
                step_ttft_ms=s.ttft_ms,
                step_per_token_ms=tpot(s.response_ms, s.ttft_ms, l_out),
                step_response_ms=s.response_ms,
                step_server_cpu_ms=s.server_cpu_ms,
                step_server_wall_ms=s.server_wall_ms,
            )
        for k in ("wait", "ttft", "per_token", "response"):
            rows[-1][f"predicted_{k}_ms"] = rows[-1][f"{prediction}_{k}_ms"]
    return Validation(
        method,
        sc.name,
        calibration,
        live,
        sim,
        pd.DataFrame(rows),
        identical,
        failures_simulated=bool(schedule),
        prediction=prediction,
        cores=cores,
        links=links,
        host_noise=noise,
    )


def predict_steps(
    pm, placement, policy, workload, prompts, cal: Calibration, arch, live: LiveRun, outages, bw, cores, links=None
):
    """docs/runtime.md §8 — the step-level prediction of the live run: the same policy kind and drivers, the
    transport's links, the calibrated CPU costs (with each link's hop costs and the client's per-token work as
    measured on the run's own links, ``links``: runtime.link_costs.LinkCosts), the host's cores and the other
    sessions' measured demand."""
    sw = pm.swarm
    costs = cal.step_costs(cores, autogroup_enabled())
    if links is not None:
        costs = replace(costs, hops=links.hops, client_head_ms=links.client_head_ms, client_embed_ms=links.client_embed_ms)
    factors = in_place_scale(costs, placement, live.server_forwards)
    if factors is not None:
        costs = costs.forwards_scaled(*factors)
    links = {c: {j: Link(float(sw.rtt_raw_client_ms[c, j]), bw) for j in range(sw.n_servers)} for c in range(sw.n_clients)}
    return simulate_steps(
        workload,
        prompts,
        policy,
        predictor(pm),
        sw.timing,
        [int(x) for x in placement.cache_slots],
        [int(m) for m in placement.n_blocks],
        links,
        costs,
        arch.hidden,
        live.background,
        # the kills and returns as they happened in the live run (a restart takes a process start and a
        # warm-up); the schedule's instants where the live run has none (docs/runtime.md §6)
        [StepOutage(o.server, o.fail_ms, o.return_ms) for o in (live.outages_done or outages)],
        pool=WARM_POOL,
    )


def in_place_scale(costs, placement, measured: dict) -> tuple[float, float] | None:
    """docs/runtime.md §8.4 — the (prefill, decode) factors on the fitted forwards (Eq. 8.4, 8.3) from the
    servers' forwards measured in place before the run (``LiveRun.server_forwards``: l_in, prefill ms, decode
    ms per step): Σ measured / Σ fitted over all servers — the same code on the same host, pooled so that one
    server's sampling noise (~10 % per short session) does not become its bias. None: nothing measured.
    Worked: fitted decode 7 and 5 ms, measured 8.4 and 5.6 → 14 / 12 = 7/6."""
    rows = []
    for j, (l_in, pre, dec) in (measured or {}).items():
        n = int(placement.n_blocks[j])
        rows.append((costs.prefill_ms(n, int(l_in)), float(pre), costs.decode_ms(n), float(dec)))
    fit_pre, got_pre = sum(r[0] for r in rows), sum(r[1] for r in rows)
    fit_dec, got_dec = sum(r[2] for r in rows), sum(r[3] for r in rows)
    if not rows or min(fit_pre, got_pre, fit_dec, got_dec) <= 0:
        return None
    return got_pre / fit_pre, got_dec / fit_dec


def plot_validation(v: Validation, path) -> None:
    """Predicted against measured per request (response and per-token time), with the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = v.rows[~v.rows["lost"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, key, label in zip(axes, ("response", "per_token", "ttft"), ("response time", "per-token time", "TTFT")):
        m, p = df[f"measured_{key}_ms"], df[f"predicted_{key}_ms"]
        ax.scatter(m, p, s=14, alpha=0.7)
        lo, hi = float(min(m.min(), p.min())), float(max(m.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"measured {label} (ms)")
        ax.set_ylabel(f"predicted {label} (ms)")
        ax.set_title(f"{label}: MAPE {mape(m, p) * 100:.1f} %")
    fig.suptitle(f"{v.scenario} · {v.method} · {len(df)} requests")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
