"""``swarmplan split``: how much of the model each client runs itself (docs/split.md §10). Thin: load, call
``split.run.run_split``, print."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from swarmplan.cli.common import SetOpt, console, run_record
from swarmplan.scenario.loader import load_scenario


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _sla_cell(value, bound, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:.3g}{unit}"
    return text if bound is None else f"{text} / {bound:g}"


def _types_table(doc: dict, swarm: bool) -> Table:
    table = Table(
        "type",
        "device",
        "share",
        "client blocks",
        "server blocks",
        "server work ms" + ("" if swarm else " (all-on-server)"),
        "response s / SLA",
        "TTFT s / SLA",
        "step ms / SLA",
        title="chosen split per request type and device class",
    )
    for row in doc["types"]:
        sp = row["split"]
        client = f"{sp['client_prefix']}" + (f" + {sp['client_suffix']}" if sp.get("client_suffix") else "")
        work = "-" if swarm else f"{row['server_work_ms']:.4g} ({row['all_on_server_work_ms']:.4g})"
        table.add_row(
            row["type"],
            row["device"],
            f"{row['share']:.3g}",
            client,
            str(sp["server_blocks"]),
            work,
            _sla_cell(row["response_s"], row["sla_response_s"], ""),
            _sla_cell(row["ttft_s"], row["sla_ttft_s"], ""),
            _sla_cell(row["token_ms"], row["sla_per_token_ms"], ""),
        )
    return table


def _sim_table(sims: dict) -> Table:
    table = Table(
        "method",
        "within SLA",
        "server work / req ms",
        "client work / req ms",
        "mean wait s",
        "mean response s",
        "throughput at SLA /s",
        title="simulation of the planning window",
    )
    for name, s in sims.items():
        table.add_row(
            name,
            f"{s['within_sla']}/{s['requests']}",
            f"{s['server_work_per_request_ms']:.4g}",
            f"{s['client_work_per_request_ms']:.4g}",
            "-" if s["wait_mean_s"] is None else f"{s['wait_mean_s']:.3g}",
            f"{s['response_mean_s']:.4g}",
            f"{s['throughput_at_sla_per_s']:.4g}",
        )
    return table


def _print_edge(console: Console, doc: dict) -> None:
    console.print(_types_table(doc, False))
    table = Table(
        "method",
        "within SLA",
        "server work / req ms",
        "client work / req ms",
        "server work vs all-on-server",
        "compute bound /s",
        "KV bound /s",
        "throughput at SLA /s",
        title=f"{doc['requests']} requests over {doc['window_s']:.4g} s on {doc['server']} "
        f"(decode batch {doc['server_decode_batch']})",
    )
    for name, s in doc["methods"].items():
        table.add_row(
            name,
            f"{s['within_sla']}/{s['requests']}",
            f"{s['server_work_per_request_ms']:.4g}",
            f"{s['client_work_per_request_ms']:.4g}",
            _pct(s["server_work_fraction"] - 1),
            f"{s['compute_bound_per_s']:.4g}",
            f"{s['kv_bound_per_s']:.4g}",
            f"{s['throughput_at_sla_per_s']:.4g}",
        )
    console.print(table)
    console.print(
        f"split-dp: server work {_pct(doc['server_work_fraction'] - 1)} vs all-on-server; throughput at SLA "
        f"{_pct(doc['throughput_gain_over_greedy'])} vs greedy",
        highlight=False,
    )
    console.print(_sim_table(doc["simulation"]))


def _print_swarm(console: Console, doc: dict) -> None:
    table = Table(
        "k (client blocks)",
        "c",
        "chains (usable)",
        "capacity /s",
        "capacity at SLA /s",
        "swarm work / req ms",
        "worst response s",
        title="the swarm placed over blocks k+1..L (GBP-CR + GCA)",
    )
    for o in doc["k_sweep"]:
        mark = " ◀" if o["k"] == doc["chosen_k"] else ""
        table.add_row(
            f"{o['k']}{mark}",
            str(o["c"]),
            f"{o['chains']} ({o['usable_chains']})",
            f"{o['capacity_per_s']:.4g}",
            f"{o['capacity_at_sla_per_s']:.4g}",
            f"{o['swarm_work_per_request_ms']:.5g}",
            f"{o['worst_response_s']:.4g}" if o["worst_response_s"] == o["worst_response_s"] else o["note"],
        )
    console.print(table)
    console.print(_types_table(doc, True))
    cap = doc["capacity_at_sla_per_s"]
    console.print(
        f"joint: k = {doc['chosen_k']}, capacity at SLA {cap['joint']:.4g}/s vs all-on-swarm {cap['all-on-swarm']:.4g}/s "
        f"({_pct(cap['joint'] / cap['all-on-swarm'] - 1) if cap['all-on-swarm'] > 0 else 'n/a'}) and greedy "
        f"(k = {doc['greedy_k']}) {cap['greedy']:.4g}/s ({_pct(doc['throughput_gain_over_greedy'])}); "
        f"swarm work {_pct(doc['server_work_fraction'] - 1)} vs all-on-swarm",
        highlight=False,
    )
    console.print(_sim_table(doc["simulation"]))


def split(
    scenario: str = typer.Argument(..., help="built-in name (split-edge, split-swarm) or YAML path with a split: section"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed for the swarm draw, the planning window and the simulation"),
    requests: int | None = typer.Option(None, "--requests", min=1, help="requests in the window (default: the scenario's)"),
    sets: list[str] | None = SetOpt,
) -> None:
    """Choose how many blocks each client device runs itself under its SLA (SplitLLM-style split)."""
    from swarmplan.split.run import run_split

    sc, base = load_scenario(scenario, sets or [])
    doc = run_split(sc, base, seed, requests)
    if as_json:
        print(json.dumps({**doc, "run": run_record("split", sets, sc, base, seed, requests=requests)}))
        return
    console.print(f"{doc['scenario']} ({doc['mode']}), seed {doc['seed']}", highlight=False)
    (_print_swarm if doc["mode"] == "swarm" else _print_edge)(console, doc)
