"""``swarmplan plan``: place the model's blocks and show the placement, its bound and the gap."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swarmplan.cli.common import SetOpt, check_choice, console, join_order_indices, output_files, seed_streams
from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario


def plan(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    method: str = typer.Option("cg-bp", "--method", "-m", help="petals | cg-bp | gsa | milp | milp-reference | gbp-cr"),
    R: Optional[int] = typer.Option(None, "--R", help="target concurrency (default: the paper's rule)"),
    seed: int = typer.Option(0, "--seed", help="seed for drawn servers and PETALS' join order"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    rebalance: bool = typer.Option(False, "--rebalance", help="petals: run PETALS' rebalancing after joining"),
    join_order: Optional[str] = typer.Option(None, "--join-order", help="petals: servers' join order, comma-separated names (default: random, seeded)"),
    time_limit: float = typer.Option(60.0, "--time-limit", help="milp: solver time limit (s)"),
    gap: float = typer.Option(1e-4, "--gap", help="milp: relative gap at which to stop"),
    threads: Optional[int] = typer.Option(None, "--threads", help="milp: solver threads"),
    verbose: bool = typer.Option(False, "--verbose", help="milp: show the solver log"),
    every_server: bool = typer.Option(False, "--every-server", help="milp: every server holds ≥ 1 block (the authors' model)"),
    quality: bool = typer.Option(True, "--quality/--no-quality", help="evaluate per-token time and the gap to a lower bound"),
    petals_cmds: bool = typer.Option(False, "--petals-commands", help="print PETALS run_server commands that apply the placement"),
    c: Optional[int] = typer.Option(None, "--c", help="gbp-cr: cache reservation c (default: chosen by --criterion)"),
    criterion: str = typer.Option("lower", "--criterion", help="gbp-cr: choose c by the Theorem-4 lower | upper bound or the surrogate"),
    plot: bool = typer.Option(False, "--plot", help="write the placement picture (servers × blocks, GCA chains) to --out as PNG and SVG"),
    out: Optional[Path] = typer.Option(None, "--out", help="--plot: folder for placement.png / placement.svg"),
    force: bool = typer.Option(False, "--force", help="--plot: overwrite existing figures in --out"),
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Place the model's blocks on the scenario's servers and show the placement."""
    from swarmplan.cli.render import plan_json, print_plan
    from swarmplan.perf.model import PerfModel
    from swarmplan.placement.registry import place
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario(scenario, sets or [])
    figure_files = _plot_targets(plot, out, force)
    swarm_rng, _, method_rng = seed_streams(seed)
    pm = PerfModel.from_swarm(realize(sc, swarm_rng, base))
    from swarmplan.methods.quality import placement_quality
    from swarmplan.placement.milp import MilpOptions
    from swarmplan.placement.registry import resolve_R

    if method == "gbp-cr":
        chain_plan = plan_gbpcr(sc, pm, c, criterion, as_json)
        _plot(figure_files, pm, chain_plan.placement, chain_plan.chains, f"{sc.name}: gbp-cr (c = {chain_plan.c})", as_json)
        return
    options: dict = {}
    if method == "petals":
        options = {"rebalance": rebalance, "balance_quality": sc.placement.petals_balance_quality,
                   "order": join_order_indices(join_order, pm.swarm.server_names)}
    elif method.startswith("milp"):
        options = {"options": MilpOptions(time_limit, gap, threads, verbose, every_server)}
    R = R if R is not None else sc.placement.R
    pl = place(method, pm, R, method_rng, sc.workload.rate_per_s, **options)
    if petals_cmds:
        from swarmplan.runtime.petals_export import petals_commands

        print("\n".join(petals_commands(pm, pl)))
        return
    q = None
    if quality:
        q = placement_quality(pm, pl, pl.R if pl.R is not None else resolve_R(pm, R, sc.workload.rate_per_s)[0])
    if as_json:
        print(json.dumps(plan_json(sc.name, pm, pl, q)))
    else:
        print_plan(console, pm, pl, q)
    if figure_files:
        from swarmplan.methods.gbpcr import chains_for

        _plot(figure_files, pm, pl, chains_for(pm, pl), f"{sc.name}: {method} (R = {pl.R})", as_json)


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
    if not files:
        return
    from swarmplan.experiments.figures import plan_figure, save

    paths = save(plan_figure(pm, placement, chains, title), files[0].with_suffix(""))
    print(f"wrote {', '.join(map(str, paths))}", file=sys.stderr if as_json else sys.stdout)


def plan_gbpcr(sc, pm, c, criterion, as_json):
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
                           for ch in plan.chains])
        print(json.dumps(doc))
        return plan
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
    return plan
