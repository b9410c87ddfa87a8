"""Human-readable output: placement tables and the block-coverage picture."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from swarmplan.perf.model import PerfModel
from swarmplan.placement.types import Placement


def coverage_bar(start: int, n: int, L: int, width: int) -> str:
    """One character per block (or per L/width blocks when L is larger than the width)."""
    cells = []
    for c in range(width):
        lo, hi = c * L // width + 1, (c + 1) * L // width
        held = n > 0 and start <= hi and start + n - 1 >= lo
        cells.append("█" if held else "·")
    return "".join(cells)


def placement_table(pm: PerfModel, pl: Placement) -> Table:
    sw = pm.swarm
    table = Table(title=f"{pl.method} placement of {sw.model.name} ({pm.L} blocks) on {sw.scenario}", title_justify="left")
    for col in ("server", "GPU", "location", "blocks", "#", "cache slots"):
        table.add_column(col, justify="right" if col in ("#", "cache slots") else "left", no_wrap=True)
    for j in range(pm.n_servers):
        s, n = int(pl.start[j]), int(pl.n_blocks[j])
        blocks = f"{s}–{s + n - 1}" if n > 0 else "—"
        table.add_row(sw.server_names[j], sw.server_gpus[j], sw.server_locations[j], blocks, str(n), str(int(pl.cache_slots[j])))
    return table


def coverage_picture(pm: PerfModel, pl: Placement, width: int = 60) -> str:
    """Each server's blocks as a bar over 1..L, and how many servers hold each block (9 = 9 or more)."""
    L = pm.L
    width = min(L, width)
    names = pm.swarm.server_names
    pad = max(len(n) for n in (*names, "servers/block"))
    scale = f"{'':{pad}} |1{'':{max(width - 1 - len(str(L)), 0)}}{L}|"
    rows = [scale]
    for j in range(pm.n_servers):
        rows.append(f"{names[j]:>{pad}} |{coverage_bar(int(pl.start[j]), int(pl.n_blocks[j]), L, width)}|")
    cover = pl.coverage(L)
    digits = "".join(
        str(min(int(cover[lo - 1 : max(hi, lo)].min()), 9))
        for lo, hi in ((c * L // width + 1, (c + 1) * L // width) for c in range(width))
    )
    rows.append(f"{'servers/block':>{pad}} |{digits}|")
    return "\n".join(rows)


def print_plan(console: Console, pm: PerfModel, pl: Placement, quality=None) -> None:
    console.print(placement_table(pm, pl))
    console.print(coverage_picture(pm, pl), highlight=False, markup=False)
    cover = pl.coverage(pm.L)
    lines = [
        f"memory model: {pl.memory_model}; blocks covered: {int((cover > 0).sum())}/{pm.L} "
        f"(min {int(cover.min())} servers per block)"
    ]
    if pl.R is not None:
        extra = ""
        if pl.r_rule is not None:
            extra = f" (paper rule: T₁ = {pl.r_rule.single_request_ms / 1000:.1f} s, R_max = {pl.r_rule.R_max})"
        lines.append(f"target concurrency R = {pl.R}{extra}")
    if pl.bound_ms_per_token is not None:
        lines.append(
            f"bound: ≤ {pl.bound_ms_per_token:.1f} ms per token while at most R requests are active "
            "(decode only; excludes prefill, waiting and set-up delays)"
        )
    if pl.order is not None:
        what = "join order" if pl.method in ("petals", "opt-num", "opt-order") else "order (increasing amortised time)"
        lines.append(f"{what}: {', '.join(pm.swarm.server_names[j] for j in pl.order)}")
    if pl.method == "petals":
        lines.append(f"min per-block throughput: {pl.info['min_block_throughput']:.1f} tokens/s")
    if "objective_ms_per_token" in pl.info:
        i = pl.info
        bound = "—" if i["best_bound_ms_per_token"] is None else f"{i['best_bound_ms_per_token']:.1f}"
        gap = "—" if i["gap"] is None else f"{100 * i['gap']:.2f}%"
        lines.append(
            f"MILP ({i['formulation']}, {i['variables']} variables, {i['constraints']} rows): {i['status']} in "
            f"{i['solve_seconds']:.1f} s; objective {i['objective_ms_per_token']:.1f} ms/token, best bound {bound}, gap {gap}"
        )
    if quality is not None:
        if quality.per_token_ms is None:
            lines.append(f"with R = {quality.R} concurrent requests this placement cannot hold them all in memory")
        else:
            lines.append(
                f"per-token decode with R = {quality.R} concurrent requests (optimal routing): "
                f"{quality.per_token_ms:.1f} ms; lower bound {quality.lower_bound_ms:.1f} ms "
                f"({quality.bound_source}); gap {100 * quality.gap:.1f}%"
            )
    console.print("\n".join(lines), highlight=False)


def plan_json(scenario: str, pm: PerfModel, pl: Placement, quality=None) -> dict:
    sw = pm.swarm
    return {
        "scenario": scenario,
        "method": pl.method,
        "n_blocks": pm.L,
        "R": pl.R,
        "R_rule": None
        if pl.r_rule is None
        else {"rule": "paper §6", "T1_s": pl.r_rule.single_request_ms / 1000, "R_max": pl.r_rule.R_max},
        "bound_ms_per_token": pl.bound_ms_per_token,
        "memory_model": pl.memory_model,
        "order": None if pl.order is None else [sw.server_names[j] for j in pl.order],
        "per_token_ms": None if quality is None else quality.per_token_ms,
        "lower_bound_ms_per_token": None if quality is None else quality.lower_bound_ms,
        "gap": None if quality is None else quality.gap,
        "solver": {
            k: pl.info[k]
            for k in ("objective_ms_per_token", "best_bound_ms_per_token", "gap", "status", "solve_seconds", "formulation")
            if k in pl.info
        }
        or None,
        "servers": [
            {
                "name": sw.server_names[j],
                "gpu": sw.server_gpus[j],
                "location": sw.server_locations[j],
                "start_block": int(pl.start[j]) if pl.n_blocks[j] > 0 else None,
                "end_block": int(pl.start[j] + pl.n_blocks[j] - 1) if pl.n_blocks[j] > 0 else None,
                "cache_slots": int(pl.cache_slots[j]),
                "petals_block_indices": pl.petals_block_indices()[j],
            }
            for j in range(pm.n_servers)
        ],
    }


_LABELS = {
    "per_token_s": "per-token (s)",
    "ttft_s": "TTFT (s)",
    "wait_s": "wait (s)",
    "service_s": "service (s)",
    "response_mean_s": "response mean (s)",
    "response_p50_s": "response p50 (s)",
    "response_p95_s": "response p95 (s)",
    "response_p99_s": "response p99 (s)",
    "max_concurrency": "max concurrency",
}
_SPLIT_LABELS = {
    "server_work_per_request_ms": "split: server work / request (ms)",
    "client_work_per_request_ms": "split: client work / request (ms)",
    "within_sla_fraction": "split: within SLA",
    "throughput_at_sla_per_s": "split: throughput at SLA (/s)",
}
_CHURN_LABELS = {
    "affected_requests": "churn: requests cut",
    "extra_latency_s": "churn: extra latency (s)",
    "recomputed_tokens": "churn: recomputed tokens",
    "waited_for_coverage": "churn: waited for coverage",
    "unfinished_requests": "churn: unfinished",
    "longest_coverage_outage_s": "churn: longest outage (s)",
}


def compare_table(result) -> Table:
    """Metrics as rows, methods as columns: mean ± std and the change of the mean against PETALS."""
    stats = result.stats()
    ref = stats.get("petals")
    table = Table(
        title=(
            f"{result.scenario}: {result.runs} runs × {result.requests} requests; profile '{result.profile}'; "
            f"PETALS cache test '{result.cache_test}'"
        ),
        title_justify="left",
        caption="mean ± std over runs; (%): change of the mean against petals",
    )
    table.add_column("metric")
    for name in stats:
        table.add_column(name, justify="right")
    first = next(iter(stats.values()), {})
    labels = {**_LABELS, **{k: v for k, v in {**_CHURN_LABELS, **_SPLIT_LABELS}.items() if k in first}}
    for key, label in labels.items():
        cells = []
        for name, st in stats.items():
            mean, std = st[key]["mean"], st[key]["std"]
            text = f"{mean:.3g}±{std:.2g}"
            if ref is not None and name != "petals" and key in _LABELS and key != "max_concurrency" and ref[key]["mean"] > 0:
                text += f"\n({100 * (mean / ref[key]['mean'] - 1):+.0f}%)"
            cells.append(text)
        table.add_row(label, *cells)
    return table


def requests_table(rows: list[dict], limit: int | None = None) -> Table:
    shown = rows if limit is None else rows[:limit]
    table = Table(
        title=f"per-request results ({len(rows)} requests" + (f", first {len(shown)}" if len(shown) < len(rows) else "") + ")",
        title_justify="left",
    )
    cols = ("request", "arrival_s", "chain", "blocks", "wait_s", "ttft_s", "completion_s", "response_s", "per_token_s")
    for col in cols:
        table.add_column(col, justify="left" if col in ("chain", "blocks") else "right")
    for row in shown:
        table.add_row(*(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    return table


def chains_table(pm: PerfModel, plan) -> Table:
    """GCA's chains for a GBP-CR placement: servers, blocks, service time, rate and capacity."""
    names = pm.swarm.server_names
    table = Table(title=f"chains (GCA) for c = {plan.c}", title_justify="left")
    for col in ("#", "chain", "blocks", "service (s)", "rate (jobs/s)", "capacity"):
        table.add_column(col, justify="left" if col in ("chain", "blocks") else "right")
    for i, ch in enumerate(sorted(plan.chains, key=lambda ch: ch.service_ms), start=1):
        table.add_row(
            str(i),
            " > ".join(names[j] for j in ch.servers),
            "+".join(map(str, ch.blocks)),
            f"{ch.service_ms / 1000:.2f}",
            f"{1000 / ch.service_ms:.4f}",
            str(ch.capacity),
        )
    return table
