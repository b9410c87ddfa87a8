"""``swarmplan`` command line: parse, call, print. Errors a user can cause exit 2 without a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.loader import DEFAULT_SCENARIO, builtin_names, load_scenario, scenario_schema

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False,
                  help="Plan, simulate and validate geo-distributed pipeline-parallel LLM inference.")
console = Console(width=None if sys.stdout.isatty() else 160)

SetOpt = typer.Option(None, "--set", help="Override a scenario field: dotted.key=value (repeatable)")


def seed_streams(seed: int, n: int = 3) -> list[np.random.Generator]:
    """Independent generators for the swarm draw, the workload and the method, from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    table = Table("name", "description")
    for name in builtin_names():
        sc, _ = load_scenario(name)
        table.add_row(name, sc.description)
    console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    print(json.dumps(scenario_schema(), indent=2))


@app.command()
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
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Place the model's blocks on the scenario's servers and show the placement."""
    from swarmplan.cli.render import plan_json, print_plan
    from swarmplan.perf.model import PerfModel
    from swarmplan.placement.registry import place
    from swarmplan.scenario.realize import realize

    sc, base = load_scenario(scenario, sets or [])
    swarm_rng, _, method_rng = seed_streams(seed)
    pm = PerfModel.from_swarm(realize(sc, swarm_rng, base))
    from swarmplan.methods.quality import placement_quality
    from swarmplan.placement.milp import MilpOptions
    from swarmplan.placement.registry import resolve_R

    if method == "gbp-cr":
        _plan_gbpcr(sc, pm, c, criterion, as_json)
        return
    options: dict = {}
    if method == "petals":
        options = {"rebalance": rebalance, "balance_quality": sc.placement.petals_balance_quality,
                   "order": _join_order(join_order, pm.swarm.server_names)}
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


def _plan_gbpcr(sc, pm, c, criterion, as_json) -> None:
    from swarmplan.cli.render import chains_table, plan_json, print_plan
    from swarmplan.methods.gbpcr import plan_chains

    _check_choice("--criterion", criterion, ("lower", "upper", "surrogate"))
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


@app.command()
def compare(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    methods: Optional[str] = typer.Option(None, "--methods", help="comma-separated (default: all but milp)"),
    runs: int = typer.Option(5, "--runs", min=1, help="Monte Carlo runs (servers and arrivals re-drawn)"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1, help="requests per run (default: the scenario's)"),
    seed: int = typer.Option(0, "--seed"),
    profile: str = typer.Option("fair", "--profile", help="fair (same delays for all) | paper (60 s vs 250 s)"),
    cache_test: str = typer.Option("petals", "--petals-cache-test", help="petals (PETALS' real test) | authors"),
    out: Optional[Path] = typer.Option(None, "--out", help="write summary.json and requests.csv here"),
    force: bool = typer.Option(False, "--force", help="overwrite existing files in --out"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes for the runs (results do not depend on it)"),
    milp_time_limit: float = typer.Option(30.0, "--milp-time-limit", help="milp method: solver time limit per run (s)"),
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Compare methods over Monte Carlo runs: mean ± std per metric and the change against PETALS."""
    from rich.progress import Progress

    from swarmplan.cli.render import compare_table
    from swarmplan.experiments.compare import compare as run_compare
    from swarmplan.methods.registry import get_methods

    _check_choice("--profile", profile, ("fair", "paper"))
    _check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    sc, base = load_scenario(scenario, sets or [])
    chosen = get_methods([m.strip() for m in methods.split(",")] if methods else None)
    targets = _output_files(out, ("summary.json", "requests.csv"), force)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{sc.name}: {runs} runs × {len(chosen)} methods", total=runs * len(chosen))
        result = run_compare(sc, chosen, runs, requests, seed, profile, cache_test, base,
                             progress=lambda k: bar.advance(task, k), keep_rows=out is not None, jobs=jobs,
                             milp_time_limit_s=milp_time_limit)
    console.print(compare_table(result))
    if targets:
        targets[0].write_text(json.dumps(result.to_json(), indent=2))
        result.write_requests_csv(targets[1])
        console.print(f"wrote {targets[0]} and {targets[1]}")


@app.command()
def simulate(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    method: str = typer.Option("cg-bprr", "--method", "-m"),
    requests: Optional[int] = typer.Option(None, "--requests", min=1),
    seed: int = typer.Option(0, "--seed"),
    profile: str = typer.Option("fair", "--profile"),
    cache_test: str = typer.Option("petals", "--petals-cache-test"),
    as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="print only the first N requests"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="also write every request to this CSV file"),
    force: bool = typer.Option(False, "--force", help="overwrite --csv if it exists"),
    sets: Optional[List[str]] = SetOpt,
) -> None:
    """Run one method once and print per-request results."""
    from swarmplan.cli.render import requests_table
    from swarmplan.experiments.compare import compare as run_compare
    from swarmplan.methods.registry import get_methods

    _check_choice("--profile", profile, ("fair", "paper"))
    _check_choice("--petals-cache-test", cache_test, ("petals", "authors"))
    sc, base = load_scenario(scenario, sets or [])
    result = run_compare(sc, get_methods([method]), 1, requests, seed, profile, cache_test, base)
    summary = result.per_run[method][0]
    if as_json:
        print(json.dumps({"scenario": sc.name, "method": method, "profile": profile, "summary": summary}))
        return
    if csv_path is not None:
        if csv_path.exists() and not force:
            raise SwarmplanError("--csv", f"would overwrite {csv_path}", "choose another file or pass --force")
        result.write_requests_csv(csv_path)
    console.print(requests_table(result.rows, limit))
    console.print(f"profile: {profile}; " + ", ".join(f"{k} = {v:.4g}" for k, v in summary.items()
                                                       if isinstance(v, (int, float))), highlight=False)


def _join_order(text: Optional[str], names: tuple[str, ...]) -> Optional[list[int]]:
    if text is None:
        return None
    order = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in order if n not in names]
    if unknown or sorted(order) != sorted(names):
        problem = f"unknown server(s) {', '.join(unknown)}" if unknown else "must name every server exactly once"
        raise SwarmplanError("--join-order", problem, f"list all of {', '.join(names)}")
    return [names.index(n) for n in order]


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SwarmplanError(option, f"unknown value {value!r}", f"use one of {', '.join(choices)}")


def _output_files(out: Optional[Path], names: tuple[str, ...], force: bool) -> list[Path]:
    """Files to write under ``out``; refuses to overwrite what a user already has unless --force."""
    if out is None:
        return []
    if out.exists() and not out.is_dir():
        raise SwarmplanError("--out", f"{out} exists and is not a folder", "give a folder path")
    paths = [out / n for n in names]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise SwarmplanError("--out", f"would overwrite {', '.join(existing)}", "choose another folder or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    return paths


from swarmplan.cli import capacity as capacity_cmd  # noqa: E402

app.command(name="capacity")(capacity_cmd.capacity)


def main() -> None:
    try:
        app()
    except SwarmplanError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
