"""``swarmplan capacity``: each method's highest Poisson rate within an SLO, and the provable upper bound
(docs/capacity.md). Thin: parse, call experiments.capacity, print."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from swarmplan.cli.common import SetOpt
from swarmplan.scenario.loader import DEFAULT_SCENARIO, load_scenario


def capacity_table(result) -> Table:
    """Methods as rows: capacity with its 95 % interval, its fraction of the bound, and what it looked like
    at its capacity (waiting, service, slot use)."""
    ub, (ub_lo, ub_hi) = result.bound()
    table = Table(
        title=(
            f"{result.scenario}: capacity at {result.slo.text or result.slo.kind} over {result.runs} run(s); "
            f"profile '{result.options.profile}'; upper bound {ub:.3g} req/s"
            + (f" [{ub_lo:.3g}, {ub_hi:.3g}]" if result.runs > 1 else "")
        ),
        title_justify="left",
        caption="capacity: mean over runs of the highest rate that held; [95 % interval]; at capacity: "
        "mean wait, mean service and slot utilisation of the run(s) there; stopped by: what failed one step "
        "above it in each run (the SLO, or a growing backlog under a quantile SLO, docs/capacity.md §1.2)",
    )
    columns = ("method", "capacity (req/s)", "95 % interval", "of bound", "wait (s)", "service (s)", "slot use", "stopped by")
    for col in columns:
        table.add_column(col, justify="left" if col == "method" else "right")
    for name in result.methods:
        cap, (lo, hi) = result.capacity(name)
        at = [s.at(s.lo) for s in result.searches[name] if s.at(s.lo)]

        def avg(key, at=at):
            vals = [a[key] for a in at if key in a]
            return f"{sum(vals) / len(vals):.3g}" if vals else "—"

        table.add_row(
            name,
            f"{cap:.3g}",
            f"[{lo:.3g}, {hi:.3g}]",
            f"{result.ratio(name):.1%}",
            avg("wait_s"),
            avg("service_s"),
            avg("mean_slot_utilisation"),
            ", ".join(sorted({s.stopped_by() for s in result.searches[name]} - {""})) or "—",
        )
    return table


def capacity(
    scenario: str = typer.Argument(DEFAULT_SCENARIO, help="built-in name or YAML path"),
    methods: str | None = typer.Option(None, "--methods", help="comma-separated (default: the default set)"),
    slo: str = typer.Option(
        "per_token<=1.2x",
        "--slo",
        help="per_token<=1.2x | per_token<=0.6 | p95<=90 | ttft<=3 (seconds; 'x' = × the single-request bound)",
    ),
    runs: int = typer.Option(1, "--runs", min=1, help="Monte Carlo runs (swarm draws)"),
    seed: int = typer.Option(0, "--seed"),
    rel_tol: float = typer.Option(0.03, "--tol", min=0.001, max=0.5, help="stop bisecting at this relative bracket"),
    horizon_services: float = typer.Option(
        20.0, "--horizon", min=2.0, help="arrivals span this many fastest service times at every rate"
    ),
    profile: str = typer.Option("fair", "--profile", help="fair | paper"),
    length_bins: int = typer.Option(
        6,
        "--bins",
        min=1,
        max=40,
        help="length classes per axis for the bound with a length distribution (finer: tighter, slower)",
    ),
    length_bins_out: int | None = typer.Option(
        None,
        "--bins-out",
        min=1,
        max=200,
        help="length classes along l_out only (default: --bins); l_out matters most (docs/capacity.md §2.3)",
    ),
    length_moments: bool = typer.Option(
        True,
        "--moments/--no-moments",
        help="hold the bound's routing to each length class's mean lengths (tighter; docs/capacity.md §2.6)",
    ),
    jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes for the runs (results do not depend on it)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    sets: list[str] | None = SetOpt,
) -> None:
    """Highest Poisson rate at which each method meets an SLO (bracketing + bisection), and an upper bound
    no placement and routing can beat."""
    from swarmplan.errors import SwarmplanError
    from swarmplan.experiments.capacity import SearchOptions, parse_slo
    from swarmplan.experiments.capacity import capacity as run_capacity
    from swarmplan.methods.registry import get_methods

    if profile not in ("fair", "paper"):
        raise SwarmplanError("--profile", f"unknown value {profile!r}", "use one of fair, paper")
    spec = parse_slo(slo)
    sc, base = load_scenario(scenario, sets or [])
    names = [m.name for m in get_methods([m.strip() for m in methods.split(",")] if methods else None)]
    opts = SearchOptions(
        horizon_services=horizon_services,
        rel_tol=rel_tol,
        profile=profile,
        length_bins=length_bins,
        length_bins_out=length_bins_out,
        length_moments=length_moments,
    )
    err = Console(stderr=True)
    err.print(f"{sc.name}: {runs} run(s) × {len(names)} methods, SLO {spec.text}", highlight=False)
    result = run_capacity(sc, names, spec, runs, seed, opts, base, jobs=jobs)
    for name in result.methods:  # no swarm sustains more than the bound: the run was too short to show it
        if result.ratio(name) > 1.0 + 1e-9:
            err.print(
                f"warning: {name} measured {result.ratio(name):.1%} of the provable bound: its overload grows too "
                f"slowly to show in {horizon_services:g} service times (docs/capacity.md §1.2); rerun with a longer "
                "--horizon (80 or more)",
                highlight=False,
            )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return
    Console(width=None if sys.stdout.isatty() else 160).print(capacity_table(result))
