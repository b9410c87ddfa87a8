"""``swarmplan plan``: place the model's blocks and show the placement, its bound and the gap."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from swarmplan.cli.common import (
    SetOpt,
    check_choice,
    check_number,
    clamp_count,
    console,
    option_blame,
    print_assumptions,
    run_record,
    seed_streams,
    with_join_order,
)
from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario


def plan(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name, YAML path or a result file to re-run"),
    method: str = typer.Option("cg-bp", "--method", "-m", help="a placement (petals | cg-bp | gsa | milp | "
                               "milp-reference) or any simulator method (opt-order, opt-num, cg-bprr, gbp-cr, …)"),
    R: Optional[int] = typer.Option(None, "--R", help="target concurrency (default: the paper's rule)"),
    seed: int = typer.Option(0, "--seed", help="seed for drawn servers and PETALS' join order"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    rebalance: bool = typer.Option(False, "--rebalance", help="petals: run PETALS' rebalancing after joining"),
    join_order: Optional[str] = typer.Option(None, "--join-order", help="PETALS-based methods: servers' join order, comma-separated names (default: random, seeded)"),
    time_limit: float = typer.Option(60.0, "--time-limit", help="milp: solver time limit (s)"),
    gap: float = typer.Option(1e-4, "--gap", help="milp: relative gap at which to stop"),
    threads: Optional[int] = typer.Option(None, "--threads", help="milp: solver threads (at most the CPUs)"),
    verbose: bool = typer.Option(False, "--verbose", help="milp: show the solver log (on stderr)"),
    every_server: bool = typer.Option(False, "--every-server", help="milp: every server holds ≥ 1 block (the authors' model)"),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="evaluate per-token time and the gap to a lower bound"),
    petals_cmds: bool = typer.Option(False, "--petals-commands", help="print PETALS run_server commands that apply the placement"),
    c: Optional[int] = typer.Option(None, "--c", help="gbp-cr: cache reservation c (default: chosen by --criterion)"),
    criterion: str = typer.Option("lower", "--criterion", help="gbp-cr: choose c by the Theorem-4 lower | upper bound or the surrogate"),
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Place the model's blocks on the scenario's servers and show the placement."""
    from swarmplan.cli.render import plan_json, print_plan
    from swarmplan.methods.registry import METHODS
    from swarmplan.perf.model import PerfModel
    from swarmplan.placement.registry import PLACEMENTS, place
    from swarmplan.scenario.realize import realize

    check_number("--seed", seed, at_least=0)
    check_number("--R", R, at_least=1)
    check_number("--c", c, at_least=1)
    check_number("--time-limit", time_limit, above=0, fix="give the solver a positive number of seconds")
    check_number("--gap", gap, at_least=0, fix="give a relative gap ≥ 0 (0 = prove optimality)")
    threads = None if threads is None else clamp_count("--threads", threads)
    if method not in PLACEMENTS and method not in METHODS:
        raise SwarmplanError("--method", f"unknown method {method!r}",
                             f"use one of {', '.join(dict.fromkeys([*PLACEMENTS, *METHODS]))}")
    sc, base = load_scenario(scenario, sets or [])
    sc = with_join_order(sc, join_order)
    swarm_rng, _, method_rng = seed_streams(seed)
    with option_blame("--join-order", "placement.petals_join_order", join_order is not None):
        pm = PerfModel.from_swarm(realize(sc, swarm_rng, base))
    from swarmplan.methods.quality import placement_quality
    from swarmplan.placement.milp import MilpOptions
    from swarmplan.placement.registry import resolve_R

    record = run_record("plan", sets, sc, base, seed, method=method, R=R, rebalance=rebalance, time_limit_s=time_limit,
                        gap=gap, threads=threads, every_server=every_server, c=c, criterion=criterion)
    if method == "gbp-cr":
        plan_gbpcr(sc, pm, c, criterion, as_json, record)
        return
    R = R if R is not None else sc.placement.R
    if method in PLACEMENTS:
        options: dict = {}
        if method == "petals":
            options = {"rebalance": rebalance, "balance_quality": sc.placement.petals_balance_quality}
        elif method.startswith("milp"):
            options = {"options": MilpOptions(time_limit, gap, threads, verbose, every_server)}
        pl = place(method, pm, R, method_rng, sc.workload.rate_per_s, **options)
    else:  # a simulator method: its placement, built exactly as compare/simulate build it
        from swarmplan.methods.registry import MethodContext

        ctx = MethodContext(pm, method_rng, sc.workload.rate_per_s, R, milp_time_limit_s=time_limit)
        if pm.swarm.petals_join_order is not None:
            ctx.join_order = list(pm.swarm.petals_join_order)
        pl, _ = METHODS[method].build(ctx)
    if petals_cmds:
        from swarmplan.runtime.petals_export import petals_commands

        print("\n".join(petals_commands(pm, pl)))
        return
    R_used, rule = resolve_R(pm, pl.R if pl.R is not None else R, sc.workload.rate_per_s)
    if "single_request_ms" in pl.info:  # the placement chose R by the paper's rule: report that rule's inputs
        rule = {k: pl.info[k] for k in ("R_rule", "single_request_ms", "R_max")}
    q = placement_quality(pm, pl, R_used) if quality else None
    if as_json:
        doc = plan_json(sc.name, pm, pl, q)
        doc.update(r_rule(rule), evaluated_at_R=R_used if quality else None, assumptions=pm.swarm.assumptions(),
                   run=record)
        print(json.dumps(doc))
    else:
        print_plan(console, pm, pl, q)
        print_assumptions(pm.swarm.assumptions())


def r_rule(rule: dict) -> dict:
    """The R rule's inputs (docs/model.md §6): T₁ (one request alone) and R_max, or that R was given."""
    return {"R_rule": rule["R_rule"],
            "T1_s": rule["single_request_ms"] / 1000 if "single_request_ms" in rule else None,
            "R_max": rule.get("R_max")}


def plan_gbpcr(sc, pm, c, criterion, as_json, record) -> None:
    from swarmplan.cli.render import chains_table, plan_json, print_plan
    from swarmplan.methods.gbpcr import plan_chains

    check_choice("--criterion", criterion, ("lower", "upper", "surrogate"))
    plan = plan_chains(pm, sc.workload.rate_per_s, c, criterion)
    lo, hi = plan.bounds_ms if plan.bounds_ms else (None, None)
    if as_json:
        doc = plan_json(sc.name, pm, plan.placement)
        doc.update(c=plan.c, criterion=criterion,
                   theorem4_response_s={"lower": lo and lo / 1000, "upper": hi and hi / 1000},
                   chains=[{"servers": [pm.swarm.server_names[j] for j in ch.servers], "blocks": list(ch.blocks),
                            "service_s": ch.service_ms / 1000, "rate_per_s": 1000 / ch.service_ms, "capacity": ch.capacity}
                           for ch in plan.chains], R_rule="not used: gbp-cr chooses c", T1_s=None, R_max=None,
                   assumptions=pm.swarm.assumptions(), run=record)
        print(json.dumps(doc))
        return
    print_plan(console, pm, plan.placement)
    console.print(chains_table(pm, plan))
    if c is not None:
        how = "given"
    elif plan.overloaded:
        how = f"maximises the chains' service rate over {plan.candidates} values: every c is overloaded"
    elif criterion == "surrogate":
        how = f"minimises c·K(c) over {plan.candidates} values"
    else:
        how = f"minimises the Theorem-4 {criterion} bound over {plan.candidates} values"
    text = f"c = {plan.c} ({how}); total service rate {plan.service_rate_per_ms * 1000:.3f} jobs/s " \
           f"for λ = {sc.workload.rate_per_s:g}/s"
    if lo is not None:
        text += f"\nTheorem-4 mean response time under JFFC (exponential service): {lo / 1000:.2f} s ≤ T ≤ {hi / 1000:.2f} s"
    console.print(text, highlight=False)
    print_assumptions(pm.swarm.assumptions())
