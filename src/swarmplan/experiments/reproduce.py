"""The papers' tables and figures regenerated as sweeps, with our values beside the published ones
(docs/research.md §6).

* ``table3``, ``table6``: Sun et al. 2025, Tables III (clustered) and VI (scattered), PETALS vs the proposed
  CG-BPRR, ``paper`` profile; published values from /work/shared/reference/bprr.md §11.2 (real system, and the
  authors' simulator in parentheses). Our simulator is compared with the authors' *simulator* column.
* ``ablation``: the same paper's Fig. 9 (per-token time vs load, Opt Order / Opt Num / Opt RR); its plotted values
  are not published in text form (bprr.md §11.4), so only our curves and the qualitative findings are given.
* ``followup``: Sun, He, Hou 2026, Fig. 6 in shape (mean response time vs fraction of fast servers and vs
  load for PETALS, BPRR and GBP-CR; related-work.md §1.8–1.9); only the 8–83 % reduction range is published.

Every reproduction is a resumable sweep in its own folder; the settings that decide the numbers (requests per
run, runs, seed) are part of its output, because the published numbers depend on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from swarmplan.errors import SwarmplanError
from swarmplan.experiments import figures
from swarmplan.experiments.executors import Executor
from swarmplan.experiments.grid import Axis
from swarmplan.experiments.sweep import SweepSpec, read_results, run_sweep

PAPER = {"petals": "PETALS", "cg-bprr": "Proposed"}
LAMBDAS, LENGTHS = (0.1, 0.5), (64, 128)

# Sun et al. 2025, Table VI (bprr.md §11.2): (topology, λ req/s, l_out) → method → (real system, simulator) s/token.
TABLE6_PUBLISHED = {
    ("AboveNet", 0.1, 64): {"petals": (4.98, 4.75), "cg-bprr": (1.86, 1.63)},
    ("AboveNet", 0.1, 128): {"petals": (4.03, 3.88), "cg-bprr": (1.44, 1.36)},
    ("AboveNet", 0.5, 64): {"petals": (5.26, 5.11), "cg-bprr": (1.97, 1.83)},
    ("AboveNet", 0.5, 128): {"petals": (4.58, 4.10), "cg-bprr": (1.35, 1.05)},
    ("BellCanada", 0.1, 64): {"petals": (6.31, 6.03), "cg-bprr": (1.33, 1.41)},
    ("BellCanada", 0.1, 128): {"petals": (3.82, 3.49), "cg-bprr": (1.26, 0.92)},
    ("BellCanada", 0.5, 64): {"petals": (6.74, 6.19), "cg-bprr": (1.49, 1.41)},
    ("BellCanada", 0.5, 128): {"petals": (4.16, 3.41), "cg-bprr": (1.11, 0.92)},
    ("GTS-CE", 0.1, 64): {"petals": (7.05, 6.12), "cg-bprr": (1.38, 1.41)},
    ("GTS-CE", 0.1, 128): {"petals": (4.69, 3.47), "cg-bprr": (0.95, 0.91)},
    ("GTS-CE", 0.5, 64): {"petals": (6.89, 5.97), "cg-bprr": (1.35, 1.40)},
    ("GTS-CE", 0.5, 128): {"petals": (4.89, 3.37), "cg-bprr": (1.07, 0.91)},
}
# Table III (bprr.md §11.2): (client cluster, λ, l_out) → method → (real, simulator).
TABLE3_PUBLISHED = {
    ("Cluster0", 0.1, 64): {"petals": (6.23, 5.33), "cg-bprr": (1.92, 1.59)},
    ("Cluster0", 0.1, 128): {"petals": (4.76, 4.74), "cg-bprr": (1.43, 0.92)},
    ("Cluster0", 0.5, 64): {"petals": (6.28, 5.33), "cg-bprr": (2.00, 1.59)},
    ("Cluster0", 0.5, 128): {"petals": (5.14, 4.74), "cg-bprr": (1.34, 0.92)},
    ("Cluster1", 0.1, 64): {"petals": (5.44, 5.17), "cg-bprr": (1.78, 1.65)},
    ("Cluster1", 0.1, 128): {"petals": (4.60, 4.58), "cg-bprr": (1.04, 0.83)},
    ("Cluster1", 0.5, 64): {"petals": (5.56, 5.17), "cg-bprr": (1.88, 1.65)},
    ("Cluster1", 0.5, 128): {"petals": (4.79, 4.58), "cg-bprr": (1.11, 0.83)},
    ("Cluster2", 0.1, 64): {"petals": (5.30, 4.85), "cg-bprr": (1.79, 1.59)},
    ("Cluster2", 0.1, 128): {"petals": (4.85, 4.07), "cg-bprr": (1.31, 0.92)},
    ("Cluster2", 0.5, 64): {"petals": (5.34, 4.85), "cg-bprr": (1.94, 1.59)},
    ("Cluster2", 0.5, 128): {"petals": (5.25, 4.07), "cg-bprr": (1.37, 0.92)},
}
TOPOLOGIES = {"AboveNet": ("Abvt", 9), "BellCanada": ("Bellcanada", 19), "GTS-CE": ("GtsCe", 60)}  # C = round(0.4·nodes)


def _clustered_matrix() -> dict:
    """paper-clustered's RTTs (5 ms inside a cluster, 100 ms between; bprr.md §10.3) with one client node per
    cluster: cluster0 remote to every server, cluster1 beside the A100s, cluster2 beside the MIGs."""
    servers = ["a100-1", "a100-2"] + [f"mig-{i}" for i in range(1, 8)]
    clients = ["cluster0", "cluster1", "cluster2"]
    group = {"cluster0": 0, "cluster1": 1, "cluster2": 2, **{s: 1 if s.startswith("a100") else 2 for s in servers}}
    nodes = clients + servers
    rtt = [[0 if a == b else (5 if group[a] == group[b] and group[a] != 0 else 100) for b in nodes] for a in nodes]
    return {"nodes": nodes, "rtt_ms": rtt}


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    specs: Callable[[int, int | None, int], list[tuple[str, SweepSpec]]]  # (runs, requests, seed) → named sweeps
    default_runs: int
    default_requests: int | None
    source: str


def _table6_specs(runs, requests, seed):
    topo = Axis(("network.topology", "servers.count"), tuple(TOPOLOGIES.values()))
    axes = (
        topo,
        Axis(("workload.rate_per_s",), tuple((v,) for v in LAMBDAS)),
        Axis(("workload.output_tokens",), tuple((v,) for v in LENGTHS)),
    )
    return [("table6", SweepSpec("paper-abvt", axes, ("petals", "cg-bprr"), runs, requests, seed, "paper"))]


def _table3_specs(runs, requests, seed):
    sets = (f"network.matrix={json.dumps(_clustered_matrix())}", "clients.0.node=cluster0")
    axes = (
        Axis(("clients.0.node",), (("cluster0",), ("cluster1",), ("cluster2",))),
        Axis(("workload.rate_per_s",), tuple((v,) for v in LAMBDAS)),
        Axis(("workload.output_tokens",), tuple((v,) for v in LENGTHS)),
    )
    return [("table3", SweepSpec("paper-clustered", axes, ("petals", "cg-bprr"), runs, requests, seed, "paper", "petals", sets))]


def _ablation_specs(runs, requests, seed):
    # bprr.md §10.1 General_varying_lamda_online: λ = [0.05, 0.1, 0.5, 1, 2] req/s, n_req = round(200·λ).
    lam = Axis(("workload.rate_per_s", "workload.n_requests"), tuple((v, round(200 * v)) for v in (0.05, 0.1, 0.5, 1.0, 2.0)))
    topo = Axis(("network.topology", "servers.count"), tuple(TOPOLOGIES.values()))
    methods = ("petals", "opt-order", "opt-num", "opt-rr", "cg-bprr")
    return [("ablation", SweepSpec("paper-abvt", (topo, lam), methods, runs, requests, seed, "paper"))]


def _followup_sets() -> tuple[str, ...]:
    """related-work.md §1.8: BLOOM-176B, 2000 input / 20 output tokens, 40 GB (120 TFLOPS) and 20 GB (80 TFLOPS)
    MIG-like GPUs, RIPE Atlas EU RTTs + 18 ms, J = 20 servers, η = 0.2, λ = 0.2 req/s, Poisson arrivals."""
    return (
        "model={\"preset\": \"bloom-176b\"}",
        "workload.arrivals=poisson",
        "workload.lengths=fixed",
        "workload.trace=null",
        "workload.input_tokens=2000",
        "workload.output_tokens=20",
        "workload.cache_tokens=2048",
        "workload.rate_per_s=0.2",
        "servers.count=20",
        "servers.gpu_fractions={\"mig-3g\": 0.2, \"mig-2g\": 0.8}",
    )


def _followup_specs(runs, requests, seed):
    methods = ("petals", "cg-bprr", "gbp-cr")
    eta = Axis(
        ("servers.gpu_fractions.mig-3g", "servers.gpu_fractions.mig-2g"),
        tuple((e, round(1 - e, 10)) for e in (0.1, 0.2, 0.3, 0.4)),
    )
    lam = Axis(("workload.rate_per_s",), tuple((v,) for v in (0.05, 0.1, 0.2, 0.3, 0.4)))
    sets = _followup_sets()
    return [
        ("followup-eta", SweepSpec("trace-azure-code", (eta,), methods, runs, requests, seed, "fair", "petals", sets)),
        ("followup-load", SweepSpec("trace-azure-code", (lam,), methods, runs, requests, seed, "fair", "petals", sets)),
    ]


RECIPES = {
    r.name: r
    for r in [
        Recipe(
            "table3",
            "Sun et al. 2025, Table III: clustered scenario, per-token time (s)",
            _table3_specs,
            20,
            100,
            "bprr.md §11.2 (Table III), §10.3",
        ),
        Recipe(
            "table6",
            "Sun et al. 2025, Table VI: scattered scenario, per-token time (s)",
            _table6_specs,
            20,
            100,
            "bprr.md §11.2 (Table VI), §10.1–10.3",
        ),
        Recipe(
            "ablation",
            "Sun et al. 2025, Fig. 9: per-token time vs load for the ablations",
            _ablation_specs,
            10,
            None,
            "bprr.md §10.1 (General_varying_lamda_online), §11.2 findings",
        ),
        Recipe(
            "followup",
            "Sun, He, Hou 2026, Fig. 6 in shape: mean response time vs η and vs λ",
            _followup_specs,
            20,
            100,
            "related-work.md §1.8–1.9",
        ),
    ]
}


@dataclass
class Reproduction:
    name: str
    title: str
    source: str
    settings: dict
    table: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def _name(method: str) -> str:
    """The registry's name for a method (old names stay aliases when methods are renamed)."""
    from swarmplan.methods.registry import get_methods

    return get_methods([method])[0].name


def rel_diff(ours: float, published: float | None) -> float | None:
    """(ours − published) / published."""
    return None if published is None else (ours - published) / published


def published_table(df: pd.DataFrame, published: dict, label_of: Callable[[pd.Series], str]) -> pd.DataFrame:
    """One row per (published cell, method): our mean ± 95 % CI beside the simulator and real values."""
    rows = []
    ours = {_name(m): m for m in PAPER}
    for (cell_key, method), sub in df.groupby([df.apply(label_of, axis=1), "method"], sort=False):
        name, lam, l_out = cell_key
        mean, half = figures.ci95(sub["per_token_s"])
        real, sim = published[cell_key][ours[method]]
        rows.append(
            {
                "setting": name,
                "λ (req/s)": lam,
                "l_out": l_out,
                "algorithm": PAPER[ours[method]],
                "ours": round(mean, 3),
                "±95%": round(half, 3),
                "paper sim": sim,
                "Δ vs sim": f"{100 * rel_diff(mean, sim):+.0f} %",
                "paper real": real,
                "Δ vs real": f"{100 * rel_diff(mean, real):+.0f} %",
            }
        )
    order = {k: i for i, k in enumerate(published)}
    out = pd.DataFrame(rows)
    out["_o"] = [order[(r["setting"], r["λ (req/s)"], r["l_out"])] for _, r in out.iterrows()]
    out["_m"] = out["algorithm"].map({"PETALS": 0, "Proposed": 1})
    return out.sort_values(["_o", "_m"]).drop(columns=["_o", "_m"]).reset_index(drop=True)


def reduction_note(table: pd.DataFrame) -> str:
    """Mean reduction of the proposed method vs PETALS, ours and the paper's simulator, over the table's cells."""
    piv = table.pivot_table(index=["setting", "λ (req/s)", "l_out"], columns="algorithm", values=["ours", "paper sim"])
    ours = 1 - piv["ours"]["Proposed"] / piv["ours"]["PETALS"]
    pub = 1 - piv["paper sim"]["Proposed"] / piv["paper sim"]["PETALS"]
    return (
        f"reduction of the per-token time vs PETALS: ours {100 * ours.min():.0f}–{100 * ours.max():.0f} % "
        f"(mean {100 * ours.mean():.0f} %), the paper's simulator {100 * pub.min():.0f}–{100 * pub.max():.0f} % "
        f"(mean {100 * pub.mean():.0f} %)"
    )


def _topology_label(row) -> str:
    return {v[0]: k for k, v in TOPOLOGIES.items()}[row["network.topology"]]


def reproduce(
    name: str,
    out: Path,
    runs: int | None = None,
    requests: int | None = None,
    seed: int = 0,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    command: list[str] | None = None,
    plots: bool = True,
) -> Reproduction:
    """Run (or resume) the named reproduction's sweeps under ``out`` and compare with the published values."""
    if name not in RECIPES:
        raise SwarmplanError("NAME", f"unknown reproduction {name!r}", f"use one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    runs = runs or recipe.default_runs
    requests = requests if requests is not None else recipe.default_requests
    sweeps = recipe.specs(runs, requests, seed)
    results, folders = {}, []
    for sub, spec in sweeps:
        folder = out / sub if len(sweeps) > 1 else out
        run_sweep(spec, folder, executor, progress, force, command)
        results[sub] = read_results(folder)
        folders.append(folder)
    settings = {
        "runs": runs,
        "requests per run": requests if requests is not None else "n_req = round(200·λ) (the authors' script)",
        "seed": f"{seed} (run r: SeedSequence([{seed}, r]), the same draws in every cell)",
        "profile": sweeps[0][1].profile,
        "methods": ", ".join(sweeps[0][1].method_names()),
        "scenario": sweeps[0][1].scenario,
        "source": recipe.source,
    }
    rep = Reproduction(name, recipe.title, recipe.source, settings, pd.DataFrame(), folders=folders)
    fig_dir = out / "figures"
    if name in ("table6", "table3"):
        df = results[name]
        if name == "table6":
            rep.table = published_table(
                df, TABLE6_PUBLISHED, lambda r: (_topology_label(r), r["workload.rate_per_s"], r["workload.output_tokens"])
            )
        else:
            rep.table = published_table(
                df,
                TABLE3_PUBLISHED,
                lambda r: (
                    r["clients.0.node"].capitalize().replace("cluster", "Cluster"),
                    r["workload.rate_per_s"],
                    r["workload.output_tokens"],
                ),
            )
        rep.notes.append(reduction_note(rep.table))
        if plots:
            rep.figures += figures.save(published_figure(rep.table, recipe.title), fig_dir / name)
    elif name == "ablation":
        df = results["ablation"].assign(topology=lambda d: d.apply(_topology_label, axis=1))
        rep.table = mean_table(df, ["topology", "workload.rate_per_s"], "per_token_s")
        rep.notes.append(
            "the paper's Fig. 9 values are not published in text form (bprr.md §11.4); its findings: "
            "Opt Num helps in most cases, especially at high load; Opt Order and Opt RR help sometimes; "
            "the combined method (cg-bprr) improves in all tested cases"
        )
        rep.notes.append(_wins_note(df, "per_token_s", ["topology", "workload.rate_per_s"]))
        if plots:
            methods = list(sweeps[0][1].method_names())
            fig = figures.metric_vs_axis(df, "workload.rate_per_s", "per_token_s", methods, ["topology"], title=recipe.title)
            rep.figures += figures.save(fig, fig_dir / "ablation-vs-load")
    else:
        frames = []
        for sub, key, label in (
            ("followup-eta", "servers.gpu_fractions.mig-3g", "η (fast fraction)"),
            ("followup-load", "workload.rate_per_s", "λ (req/s)"),
        ):
            df = results[sub]
            t = mean_table(df, [key], "response_mean_s").rename(columns={key: "value"})
            t.insert(0, "swept", label)
            frames.append(t)
            rep.notes.append(_wins_note(df, "response_mean_s", [key], baselines=("petals", "cg-bprr"), best="gbp-cr"))
            if plots:
                methods = list(sweeps[0][1].method_names())
                fig = figures.metric_vs_axis(df, key, "response_mean_s", methods, [], title=f"{recipe.title}: vs {label}")
                rep.figures += figures.save(fig, fig_dir / sub)
        rep.table = pd.concat(frames, ignore_index=True)
        rep.notes.append(
            "published (Sun, He, Hou 2026, Fig. 6): 8–83 % mean response-time reduction of GBP-CR vs "
            "PETALS and BPRR, largest with few servers and few fast GPUs (related-work.md §1.9)"
        )
    return rep


def mean_table(df: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Rows: the given keys; one column per method: mean over runs (3 significant digits)."""
    methods = list(dict.fromkeys(df["method"]))
    piv = df.pivot_table(index=keys, columns="method", values=metric, aggfunc="mean")[methods]
    return piv.round(3).reset_index()


def _wins_note(df: pd.DataFrame, metric: str, keys: list[str], baselines=("petals",), best="cg-bprr") -> str:
    piv = df.pivot_table(index=keys, columns="method", values=metric, aggfunc="mean")
    parts = []
    for b in baselines:
        red = 1 - piv[_name(best)] / piv[_name(b)]
        parts.append(
            f"{best} vs {b}: {100 * red.min():.0f}–{100 * red.max():.0f} % lower {metric} "
            f"({int((red > 0).sum())} of {len(red)} points better)"
        )
    return "; ".join(parts)


def published_figure(table: pd.DataFrame, title: str):
    """Grouped bars: ours (with 95 % CI) beside the paper's simulator and real values, per cell and algorithm."""
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [f"{r['setting']} λ={r['λ (req/s)']} l={r['l_out']} {r['algorithm']}" for _, r in table.iterrows()]
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(table)), 5))
    ax.bar(x - 0.27, table["ours"], 0.27, yerr=table["±95%"], capsize=2, label="swarmplan (ours)")
    ax.bar(x, table["paper sim"], 0.27, label="paper: simulator")
    ax.bar(x + 0.27, table["paper real"], 0.27, label="paper: real system")
    ax.set_xticks(x, labels, fontsize=7, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_ylabel("per-token time (s)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
