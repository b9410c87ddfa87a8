"""Figures from plain results (matplotlib, Agg backend; PNG and SVG) — docs/research.md §4.

* ``metric_vs_axis``: mean of a metric over runs vs one swept axis, one line per method, a 95 % confidence
  band for the mean (Student t over the runs, docs/research.md §4.1); other axes become panels or are fixed.
* ``response_cdf``: empirical CDF of response times per method.
* ``method_bars``: one cell's methods side by side with 95 % confidence intervals.
* ``placement_figure``: servers × blocks, coloured by GPU type, with the GCA chains drawn across.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

LABELS = {
    "per_token_s": "mean per-token time (s)",
    "response_mean_s": "mean response time (s)",
    "ttft_s": "mean time to first token (s)",
    "wait_s": "mean wait (s)",
    "response_p95_s": "P95 response time (s)",
    "service_s": "mean service time (s)",
    "mean_slot_utilisation": "mean KV-slot utilisation",
}
FORMATS = ("png", "svg")


def ci95(values: Iterable[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % confidence interval of the mean); half-width 0 for one value.

    half = t_{0.975, n−1} · s / √n with s the sample standard deviation (docs/research.md §4.1).
    """
    x = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], float)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), 0.0
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def save(fig, base: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``base.png`` / ``base.svg``; returns the paths."""
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = base.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        paths.append(path)
    plt.close(fig)
    return paths


def _is_numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)


def _sorted_unique(series) -> list:
    vals = list(dict.fromkeys(series.tolist()))
    return sorted(vals) if _is_numeric(vals) else vals


def curve_points(df, x: str, metric: str, method: str) -> tuple[list, np.ndarray, np.ndarray]:
    """(x values, means, 95 % half-widths) of one method's curve; ``df`` holds one row per run at each x."""
    sub = df[df["method"] == method]
    xs = _sorted_unique(sub[x])
    stats_ = [ci95(sub.loc[sub[x] == v, metric]) for v in xs]
    return xs, np.array([s[0] for s in stats_]), np.array([s[1] for s in stats_])


def _panel(ax, df, x: str, metric: str, methods: list[str]) -> None:
    numeric = _is_numeric(_sorted_unique(df[x]))
    for method in methods:
        xs, mean, half = curve_points(df, x, metric, method)
        pos = np.asarray(xs, float) if numeric else np.arange(len(xs))
        (line,) = ax.plot(pos, mean, marker="o", ms=3, label=method)
        ax.fill_between(pos, mean - half, mean + half, color=line.get_color(), alpha=0.2, lw=0)
        if not numeric:
            ax.set_xticks(pos, [str(v) for v in xs], rotation=30, ha="right")
    ax.grid(alpha=0.3)


def metric_vs_axis(df, x: str, metric: str, methods: list[str], others: list[str], title: str = ""):
    """One metric vs swept key ``x``. With other swept keys, the one with fewest values gives the panels
    (at most 6, evenly chosen) and any further keys are fixed at their middle value (stated in the title)."""
    fixed = {}
    facet = None
    if others:
        counts = {k: len(_sorted_unique(df[k])) for k in others}
        facet = min(others, key=lambda k: counts[k])
        for k in others:
            if k != facet:
                vals = _sorted_unique(df[k])
                fixed[k] = vals[len(vals) // 2]
                df = df[df[k] == fixed[k]]
    panels = [None]
    if facet is not None:
        vals = _sorted_unique(df[facet])
        panels = [vals[i] for i in np.unique(np.linspace(0, len(vals) - 1, min(6, len(vals))).round().astype(int))]
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False, sharey=True)
    for i, pv in enumerate(panels):
        ax = axes[i // ncol][i % ncol]
        sub = df if pv is None else df[df[facet] == pv]
        _panel(ax, sub, x, metric, methods)
        if pv is not None:
            ax.set_title(f"{facet} = {pv}", fontsize=9)
        ax.set_xlabel(x)
        if i % ncol == 0:
            ax.set_ylabel(LABELS.get(metric, metric))
    for j in range(len(panels), nrow * ncol):
        axes[j // ncol][j % ncol].set_visible(False)
    axes[0][0].legend(fontsize=8)
    note = ", ".join(f"{k} = {v}" for k, v in fixed.items())
    fig.suptitle((title + (f" ({note})" if note else "")).strip() + "\nlines: mean over runs; bands: 95 % CI", fontsize=10)
    fig.tight_layout()
    return fig


def response_cdf(requests_df, methods: list[str], title: str = ""):
    """Empirical CDF of response time (s) per method over the given per-request rows."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method in methods:
        r = np.sort(requests_df.loc[requests_df["method"] == method, "response_s"].to_numpy())
        if len(r):
            ax.step(r, np.arange(1, len(r) + 1) / len(r), where="post", label=method)
    ax.set_xlabel("response time (s)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def method_bars(
    df, methods: list[str], metrics: tuple[str, ...] = ("per_token_s", "ttft_s", "wait_s", "response_mean_s"), title: str = ""
):
    """One panel per metric: each method's mean over runs with its 95 % confidence interval."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        pts = [ci95(df.loc[df["method"] == m, metric]) for m in methods]
        ax.bar(
            range(len(methods)),
            [p[0] for p in pts],
            yerr=[p[1] for p in pts],
            capsize=3,
            color=[colors[i % len(colors)] for i in range(len(methods))],
        )
        ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(LABELS.get(metric, metric), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title + "\nbars: mean over runs; whiskers: 95 % CI", fontsize=10)
    fig.tight_layout()
    return fig


def placement_figure(names, gpus, start, n_blocks, L: int, chains=(), title: str = ""):
    """Servers (rows) × blocks 1..L (1-based, inclusive), coloured by GPU type; each chain is a line that
    walks its servers over the blocks each one processes, width ∝ its capacity."""
    start, n_blocks = np.asarray(start), np.asarray(n_blocks)
    order = sorted(range(len(names)), key=lambda j: (n_blocks[j] == 0, start[j], j))
    row = {j: i for i, j in enumerate(order)}
    types = list(dict.fromkeys(gpus))
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(names)))
    for j in order:
        if n_blocks[j] > 0:
            ax.barh(
                row[j],
                n_blocks[j],
                left=start[j] - 0.5,
                height=0.6,
                color=cmap(types.index(gpus[j]) % 10),
                edgecolor="black",
                lw=0.4,
            )
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=cmap(i % 10), edgecolor="black", lw=0.4, label=t) for i, t in enumerate(types)]
    caps = [ch.capacity for ch in chains] or [1]
    for k, ch in enumerate(chains):
        xs, ys, b = [], [], 1
        for j, m in zip(ch.servers, ch.blocks):
            xs += [b - 0.5, b + m - 0.5]
            ys += [row[j], row[j]]
            b += m
        (line,) = ax.plot(xs, ys, color="black", alpha=0.6, lw=0.6 + 2.4 * ch.capacity / max(caps))
        if k == 0:
            line.set_label(f"{len(chains)} chain(s), width ∝ capacity")
            handles.append(line)
    ax.set_yticks(range(len(order)), [names[j] for j in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0.5, L + 0.5)
    ax.set_xlabel(f"block (1 … {L})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


COMPARE_FIGURES = ("methods-bars", "response-cdf")


def compare_figures(result, out: Path) -> list[Path]:
    """``compare --plot``: the per-method bars (over runs) and the response-time CDF (all runs) of one cell."""
    import pandas as pd

    rows = [
        {"method": m, "run": r, **{k: v for k, v in s.items() if not isinstance(v, list)}}
        for m, runs in result.per_run.items()
        for r, s in enumerate(runs)
    ]
    title = f"{result.scenario}: {result.runs} runs × {result.requests} requests, profile {result.profile}"
    paths = save(method_bars(pd.DataFrame(rows), result.methods, title=title), out / COMPARE_FIGURES[0])
    responses = result.response_frame()  # kept response times (streamed runs) or the kept rows
    if len(responses):
        paths += save(response_cdf(responses, result.methods, title=title), out / COMPARE_FIGURES[1])
    return paths


def plan_figure(pm, placement, chains, title: str = ""):
    """``plan --plot``: the placement of a PerfModel's servers with the given chains."""
    return placement_figure(pm.swarm.server_names, pm.swarm.server_gpus, placement.start, placement.n_blocks, pm.L, chains, title)
