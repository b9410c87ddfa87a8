"""``swarmplan plan``: place the model's blocks and show the placement, its bound and the gap."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.cli.common import (
    OptionOpt,
    SetOpt,
    check_number,
    clamp_count,
    console,
    option_blame,
    output_files,
    print_assumptions,
    run_record,
    seed_streams,
    with_join_order,
)
from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario

_H = dict(hidden=True)  # earlier per-method flags, kept as shortcuts for --option


def plan(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name, YAML path or a result file to re-run"),
    method: str = typer.Option(
        "cg-bp",
        "--method",
        "-m",
        help="a placement (petals, cg-bp, gsa, milp, milp-reference, gbp-cr, …) or any "
        "method name (e.g. opt-num, cg-bprr), whose placement is shown",
    ),
    R: Optional[int] = typer.Option(None, "--R", min=1, help="target concurrency (default: the paper's rule)"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed for drawn servers and PETALS' join order"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    options: Optional[List[str]] = OptionOpt,
    quality: bool = typer.Option(True, "--quality/--no-quality", help="evaluate per-token time and the gap to a lower bound"),
    petals_cmds: bool = typer.Option(
        False, "--petals-commands", help="print PETALS run_server commands that apply the placement"
    ),
    plot: bool = typer.Option(
        False, "--plot", help="write the placement picture (servers × blocks, GCA chains) to --out as PNG and SVG"
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="--plot: folder for placement.png / placement.svg"),
    force: bool = typer.Option(False, "--force", help="--plot: overwrite existing figures in --out"),
    sets: Optional[List[str]] = SetOpt,
    rebalance: Optional[bool] = typer.Option(None, "--rebalance", **_H),
    join_order: Optional[str] = typer.Option(
        None,
        "--join-order",
        help="PETALS' join order, comma-separated server names (sets placement.petals_join_order; default: random, seeded)",
    ),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", **_H),
    gap: Optional[float] = typer.Option(None, "--gap", **_H),
    threads: Optional[int] = typer.Option(None, "--threads", **_H),
    verbose: Optional[bool] = typer.Option(None, "--verbose", **_H),
    every_server: Optional[bool] = typer.Option(None, "--every-server", **_H),
    c: Optional[int] = typer.Option(None, "--c", **_H),
    criterion: Optional[str] = typer.Option(None, "--criterion", **_H),
) -> None:
    """Place the model's blocks on the scenario's servers and show the placement.

    Options of the placement: --option NAME.FIELD=VALUE, e.g. --option milp.time_limit_s=30,
    --option petals.rebalance=true, --option gbp-cr.c=4 (`swarmplan methods` lists them all).
    """
    from swarmplan.cli.render import chains_table, plan_json, print_plan
    from swarmplan.methods.options import parse_options
    from swarmplan.methods.plan import plan_placement
    from swarmplan.placement.gbpcr_plan import ChainPlan

    check_number("--time-limit", time_limit, above=0, fix="give the solver a positive number of seconds")
    check_number("--gap", gap, at_least=0, fix="give a relative gap ≥ 0 (0 = prove optimality)")
    check_number("--c", c, at_least=1)
    threads = None if threads is None else clamp_count("--threads", threads)
    legacy = {
        "petals": {"rebalance": rebalance},
        "milp": {
            "time_limit_s": time_limit,
            "rel_gap": gap,
            "threads": threads,
            "verbose": verbose,
            "require_every_server": every_server,
        },
        "gbp-cr": {"c": c, "criterion": criterion},
    }
    items = list(options or [])
    for name, fields in legacy.items():
        for fname, value in fields.items():
            if value is not None:
                for target in [name, "milp-reference"] if name == "milp" else [name]:
                    items.append(f"{target}.{fname}={value}")
    sc, base = load_scenario(scenario, sets or [])
    sc = with_join_order(sc, join_order)
    figure_files = _plot_targets(plot, out, force)
    swarm_rng, _, method_rng = seed_streams(seed)
    with option_blame("--join-order", "placement.petals_join_order", join_order is not None):
        result = plan_placement(
            sc,
            base,
            method,
            R if R is not None else sc.placement.R,
            swarm_rng,
            method_rng,
            parse_options(items),
            quality and not petals_cmds,
        )
    pm, pl = result.pm, result.placement
    if petals_cmds:
        from swarmplan.runtime.petals_export import petals_commands

        print("\n".join(petals_commands(pm, pl)))
        return
    plan_details = pl.details if isinstance(pl.details, ChainPlan) else None
    if as_json:
        doc = plan_json(sc.name, pm, pl, result.quality)
        if plan_details is not None:
            doc.update(_chain_plan_json(pm, plan_details))
        doc.update(
            assumptions=pm.swarm.assumptions(), run=run_record("plan", sets, sc, base, seed, method=method, R=R, options=items)
        )
        print(json.dumps(doc))
    else:
        print_plan(console, pm, pl, result.quality)
        if plan_details is not None:
            console.print(chains_table(pm, plan_details))
            console.print(_chain_plan_text(plan_details, sc.workload.rate_per_s), highlight=False)
        print_assumptions(pm.swarm.assumptions())
    if figure_files:
        from swarmplan.methods.policies import chains_for

        what = f"c = {plan_details.c}" if plan_details is not None else f"R = {pl.R}"
        _plot(figure_files, pm, pl, chains_for(pm, pl), f"{sc.name}: {method} ({what})", as_json)


def _plot_targets(plot: bool, out: Optional[Path], force: bool) -> list[Path]:
    if not plot:
        return []
    if out is None:
        raise SwarmplanError("--plot", "needs --out (the folder for placement.png and placement.svg)", "add --out DIR")
    from swarmplan.experiments.deps import require_research

    require_research("--plot")
    return output_files(out, ("placement.png", "placement.svg"), force)


def _plot(files: list[Path], pm, placement, chains, title: str, as_json: bool) -> None:
    """The placement picture; under --json its paths go to stderr so stdout stays one JSON document."""
    from swarmplan.experiments.figures import plan_figure, save

    paths = save(plan_figure(pm, placement, chains, title), files[0].with_suffix(""))
    print(f"wrote {', '.join(map(str, paths))}", file=sys.stderr if as_json else sys.stdout)


def _chain_plan_json(pm, plan) -> dict:
    lo, hi = plan.bounds_ms if plan.bounds_ms else (None, None)
    return dict(
        c=plan.c,
        criterion=plan.criterion,
        theorem4_response_s={"lower": lo and lo / 1000, "upper": hi and hi / 1000},
        chains=[
            {
                "servers": [pm.swarm.server_names[j] for j in ch.servers],
                "blocks": list(ch.blocks),
                "service_s": ch.service_ms / 1000,
                "rate_per_s": 1000 / ch.service_ms,
                "capacity": ch.capacity,
            }
            for ch in plan.chains
        ],
    )


def _chain_plan_text(plan, rate_per_s: float) -> str:
    if plan.candidates == 1:
        how = "given"
    elif plan.overloaded:
        how = f"maximises the chains' service rate over {plan.candidates} values: every c is overloaded"
    elif plan.criterion == "surrogate":
        how = f"minimises c·K(c) over {plan.candidates} values"
    else:
        how = f"minimises the Theorem-4 {plan.criterion} bound over {plan.candidates} values"
    text = f"c = {plan.c} ({how}); total service rate {plan.service_rate_per_ms * 1000:.3f} jobs/s for λ = {rate_per_s:g}/s"
    if plan.bounds_ms:
        lo, hi = plan.bounds_ms
        text += f"\nTheorem-4 mean response time under JFFC (exponential service): {lo / 1000:.2f} s ≤ T ≤ {hi / 1000:.2f} s"
    return text
