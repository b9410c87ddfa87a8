"""Run a workload on real server processes with the method's placement and policy (docs/runtime.md §4–5).

One call launches a server per placement span (KV slots = the placement's cache slots, every link the
swarm's RTT), runs every request as its own asyncio task from its arrival time, applies the failure
schedule (kill at fail_s, restart at return_s) and always reaps the servers.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import numpy as np

from swarmplan.runtime.client import ChainRunner, Connections, HopFailed, RequestRecord, make_driver, serve_request
from swarmplan.runtime.host_load import LoadSampler
from swarmplan.runtime.launch import ServerGroup, ServerSpec
from swarmplan.runtime.live import LiveSlots
from swarmplan.runtime.model import Head, LlamaArch
from swarmplan.runtime.wire import Link, run_precise
from swarmplan.sim.recording import ChainTimer

WARM_POOL = 4  # connections per server opened before the clock starts (the step-level prediction starts with them)
WARM_STEPS = 16  # decode steps of each warm-up session that measures a server's forwards in place
WARM_ROUNDS = 3  # measured rounds over all servers (after one that only warms up)


@dataclass
class Outage:
    server: int  # index in the swarm
    fail_ms: float
    return_ms: float | None = None


@dataclass
class LiveRun:
    records: list[RequestRecord]
    outages: list[Outage]
    wall_s: float
    server_pids: list[int]
    background: object = None  # sim.cpu_share.Background: other sessions' demand during the run (§8.5)
    other_runnable_mean: float = 0.0  # other sessions' runnable processes, mean over the run
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the host's, at the end of the run
    # Each server's forwards measured in place before the clock started: {server: (l_in, prefill CPU ms of
    # l_in tokens, decode CPU ms per step)} (docs/runtime.md §8.4)
    server_forwards: dict = field(default_factory=dict)
    # The outages as they happened: each kill's and restart's completion instant (ms from the run's start);
    # a restart counts once the server is warmed up and offered to requests again
    outages_done: list[Outage] = field(default_factory=list)


def server_specs(pm, placement, bandwidth_mbit_s: float | None = None) -> list[ServerSpec]:
    """One process per server that holds blocks; its links carry the swarm's RTT to every client and server."""
    sw = pm.swarm
    specs = []
    for j in np.flatnonzero(placement.n_blocks > 0).tolist():
        links = {f"client:{c}": (float(sw.rtt_raw_client_ms[c, j]), bandwidth_mbit_s) for c in range(sw.n_clients)}
        for i in range(sw.n_servers):
            rtt = sw.rtt_raw_server_ms[i, j]
            if i != j and np.isfinite(rtt):
                links[f"server:{i}"] = (float(rtt), bandwidth_mbit_s)
        specs.append(
            ServerSpec(
                j, sw.server_names[j], int(placement.start[j]), int(placement.n_blocks[j]), int(placement.cache_slots[j]), links
            )
        )
    return specs


def predictor(pm):
    """docs/model.md §3.3–3.4 — the model's service time of a request on a chain plus d_init (used for bookings)."""
    timer = ChainTimer(pm)
    d_init = pm.swarm.timing.initial_delay_ms

    def predict(client, l_in, l_out, servers, processed):
        t1, tok = timer.times(client, l_in, servers, processed)
        return t1 + (l_out - 1) * tok + d_init

    return predict


def run_live(
    arch: LlamaArch,
    pm,
    placement,
    policy,
    workload,
    prompts: list[list[int]],
    *,
    device: str = "cpu",
    host: str = "127.0.0.1",
    outages: list[Outage] = (),
    bandwidth_mbit_s: float | None = None,
    secret: bytes | None = None,
    group: ServerGroup | None = None,
    log=None,
) -> LiveRun:
    specs = server_specs(pm, placement, bandwidth_mbit_s)
    secret = secret or os.urandom(32)
    group = group or ServerGroup(arch, specs, secret, host=host, device=device)
    with group:
        pids = list(group.pids)
        if log:
            log(f"running {workload.n} requests on {len(pids)} server processes …")
        t_start = time.monotonic()
        with LoadSampler() as sampler:
            bw = bandwidth_mbit_s
            run = _drive(arch, pm, placement, policy, workload, prompts, group, secret, host, device, list(outages), bw)
            # connections: the pooled ones per client and server, plus one per session the slots allow
            conns = pm.swarm.n_clients * WARM_POOL * len(specs) + int(np.sum(placement.cache_slots))
            records, t0, measured, happened = run_precise(run, descriptors=conns)
        wall = time.monotonic() - t_start
    l_in = int(workload.input_tokens.max())
    return LiveRun(
        records,
        list(outages),
        wall,
        pids,
        sampler.background(t0),
        sampler.mean_busy(),
        tuple(os.getloadavg()),
        {j: (l_in, pre, dec) for j, (pre, dec) in measured.items()},
        happened,
    )


async def _drive(arch, pm, placement, policy, workload, prompts, group, secret, host, device, outages, bw):
    import torch

    torch.set_num_threads(1)
    loop = asyncio.get_running_loop()
    sw = pm.swarm
    live = LiveSlots(placement.cache_slots)
    for j in range(sw.n_servers):
        if placement.n_blocks[j] == 0:
            live.set_dead(j)
    head = Head(arch, device)
    span = [int(m) for m in placement.n_blocks]
    t0 = loop.time()

    def clock() -> float:
        return (loop.time() - t0) * 1000.0

    runners, conns = {}, {}
    for c in range(sw.n_clients):
        conns[c] = Connections(host, group.ports, secret, f"client:{c}")
        links = {j: Link(float(sw.rtt_raw_client_ms[c, j]), bw) for j in range(sw.n_servers)}
        runners[c] = ChainRunner(head, conns[c], links, live, span, clock)
    measured = await _warm_up(head, runners, placement, int(workload.input_tokens.max()))
    t0 = loop.time()  # the run's clock starts once every server is warm
    driver = make_driver(policy, live, predictor(pm), clock, sw.timing)
    happened: list = []
    churn = asyncio.create_task(_churn(outages, group, conns, live, clock, runners, placement, happened))
    arrival, l_out, client = workload.arrival_ms.tolist(), workload.output_tokens.tolist(), workload.client.tolist()
    recs = [RequestRecord(r, arrival[r], list(prompts[r]), int(l_out[r])) for r in range(workload.n)]
    try:
        await asyncio.gather(*(serve_request(recs[r], client[r], driver, runners[client[r]], clock) for r in range(workload.n)))
    finally:
        churn.cancel()
        for c in conns.values():
            c.close()
    return recs, t0, measured, [Outage(j, f, r) for j, f, r in happened]  # t0: time.monotonic(), the sampler's


async def _warm_up(
    head, runners, placement, l_in: int, pool: int = WARM_POOL, steps: int = WARM_STEPS, rounds: int = WARM_ROUNDS
) -> dict:
    """Open a few pooled connections per server and run short sessions through every span, so the first
    measured request pays neither connection set-up nor the first forward's one-off allocations.

    The sessions also measure each server's forwards in place (docs/runtime.md §8.4): per round and server one
    prompt-only session (its CPU is the prefill of ``l_in`` tokens) and one of ``steps`` decode steps (minus
    that prefill, per step), the client computing the LM head and embedding between hops as in the run. The
    rounds go over the servers in turn, so each server's mean spans the whole warm-up rather than one moment of
    a host whose speed drifts. Returns {server: (mean prefill CPU ms, mean decode CPU ms per step)}; the first
    round only warms up."""
    sums: dict[int, list[float]] = {}
    runner = next(iter(runners.values()))  # every client shares the one Head and the servers
    servers = np.flatnonzero(placement.n_blocks > 0).tolist()
    for r in runners.values():
        for j in servers:
            conns = [await r.conns.get(j) for _ in range(pool)]
            for conn in conns:
                r.conns.put(j, conn)
    for rnd in range(rounds + 1):
        for j in servers:
            n = int(placement.n_blocks[j])
            only = RequestRecord(-1 - j, 0.0, [1] * l_in, 1)
            await runner.run(only, [j], [n])
            more = RequestRecord(-1 - j, 0.0, [1] * l_in, steps + 1)
            await runner.run(more, [j], [n])
            if rnd:
                acc = sums.setdefault(j, [0.0, 0.0])
                acc[0] += only.server_cpu_ms / rounds
                acc[1] += (more.server_cpu_ms - only.server_cpu_ms) / steps / rounds
    return {j: (pre, dec) for j, (pre, dec) in sums.items()}


async def _churn(outages: list[Outage], group: ServerGroup, conns, live: LiveSlots, clock, runners, placement, done) -> None:
    """Kill at fail_ms and restart at return_ms. A restarted server is warmed up (one short session, as at the
    start) before it is offered to requests again, and the instants at which each kill and each return actually
    completed are appended to ``done`` as (server, fail_ms, return_ms | None) (docs/runtime.md §6)."""
    events = sorted(
        [(o.fail_ms, "fail", o.server) for o in outages]
        + [(o.return_ms, "return", o.server) for o in outages if o.return_ms is not None]
    )
    loop = asyncio.get_running_loop()
    failed_at: dict[int, float] = {}
    for at, what, j in events:
        await asyncio.sleep(max(0.0, at - clock()) / 1000)
        if j not in group.specs:
            continue
        if what == "fail":
            await loop.run_in_executor(None, group.kill, j)
            failed_at[j] = clock()
            done.append([j, failed_at[j], None])
        else:
            port = await loop.run_in_executor(None, group.restart, j)
            for c in conns.values():
                c.server_back(j, port)
            runner = next(iter(runners.values()))
            try:
                await runner.run(RequestRecord(-1 - j, 0.0, [1] * 4, 4), [j], [int(placement.n_blocks[j])])
            except HopFailed:
                continue  # it died again while warming up: it stays dead, as the client saw
            live.set_alive(j)
            for row in reversed(done):
                if row[0] == j and row[2] is None:
                    row[2] = clock()
                    break
