"""``swarmplan report DIR``: a sweep's figures and one self-contained HTML page (docs/research.md §5).

The page embeds every figure as a data URI (PNG shown, SVG linked) and opens without a server. It states the
scenario, the grid, the version, the command lines, executors and seeds, so the numbers can be regenerated.
Per-request rows, when kept, are read for one cell only, so memory does not grow with the sweep.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from swarmplan.errors import SwarmplanError
from swarmplan.experiments import figures, store
from swarmplan.experiments.sweep import axis_columns, read_manifest, read_results

CURVE_METRICS = ("per_token_s", "response_mean_s", "wait_s")
TABLE_METRICS = ("per_token_s", "response_mean_s", "wait_s", "ttft_s", "response_p95_s")


@dataclass
class Report:
    path: Path
    figures: list[Path] = field(default_factory=list)  # PNG and SVG files under DIR/figures
    tables: list[str] = field(default_factory=list)  # ids of the tables in the page


def reference_cell(df: pd.DataFrame) -> int:
    """The middle cell (row-major), shown in bars and CDFs."""
    cells = sorted(df["cell"].unique())
    return int(cells[len(cells) // 2])


def make_figures(out: Path, manifest: dict, df: pd.DataFrame) -> list[tuple[str, list[Path]]]:
    """Write the sweep's figures under ``out/figures``; returns (caption, [png, svg]) pairs."""
    fig_dir = out / "figures"
    methods = manifest["spec"]["methods"]
    groups = axis_columns(manifest)
    made = []
    for g, keys in enumerate(groups):
        x = keys[0]
        others = [grp[0] for i, grp in enumerate(groups) if i != g]
        for metric in CURVE_METRICS:
            fig = figures.metric_vs_axis(df, x, metric, methods, others, title=f"{manifest['scenario_name']}")
            made.append((f"{figures.LABELS[metric]} vs {x}", figures.save(fig, fig_dir / f"{metric}-vs-{_slug(x)}")))
    ref = reference_cell(df)
    cell_df = df[df["cell"] == ref]
    label = _cell_label(manifest, ref)
    fig = figures.method_bars(cell_df, methods, title=f"cell {ref}: {label}")
    made.append((f"methods at cell {ref} ({label})", figures.save(fig, fig_dir / "bars-reference-cell")))
    req_path = out / store.REQUESTS
    if req_path.exists():
        rdf = pq.read_table(req_path, columns=["cell", "method", "response_s"], filters=[("cell", "=", ref)]).to_pandas()
        fig = figures.response_cdf(rdf, methods, title=f"cell {ref}: {label}, all runs")
        made.append((f"response-time CDF at cell {ref} ({label})", figures.save(fig, fig_dir / "cdf-reference-cell")))
    return made


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _cell_label(manifest: dict, cell: int) -> str:
    vals = manifest["cells"][cell]
    return ", ".join(f"{k}={v}" for k, v in vals.items()) or "the base scenario"


def cell_table(df: pd.DataFrame, manifest: dict, metric: str) -> pd.DataFrame:
    """Rows: cells (their swept values); columns: methods; entries 'mean ± 95 % half-width' over runs."""
    keys = [k for grp in axis_columns(manifest) for k in grp]
    methods = manifest["spec"]["methods"]
    rows = []
    for cell, sub in df.groupby("cell", sort=True):
        row = {"cell": int(cell), **{k: sub[k].iloc[0] for k in keys}}
        for m in methods:
            mean, half = figures.ci95(sub.loc[sub["method"] == m, metric])
            row[m] = f"{mean:.4g} ± {half:.2g}"
        rows.append(row)
    return pd.DataFrame(rows)


def method_table(df: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per method: every metric's mean over all cells and runs (a quick overall view)."""
    rows = []
    for m in methods:
        sub = df[df["method"] == m]
        rows.append({"method": m, **{k: f"{sub[k].mean():.4g}" for k in TABLE_METRICS}, "rows": len(sub)})
    return pd.DataFrame(rows)


def _img(png: Path, svg: Path | None) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    link = ""
    if svg is not None and svg.exists():
        link = f' <a download="{svg.name}" href="data:image/svg+xml;base64,{base64.b64encode(svg.read_bytes()).decode()}">SVG</a>'
    return f'<img alt="{html.escape(png.stem)}" data-file="{html.escape(png.name)}" src="data:image/png;base64,{data}">{link}'


def _yaml(doc) -> str:
    from ruamel.yaml import YAML

    buf = io.StringIO()
    y = YAML()
    y.default_flow_style = False
    y.dump(doc, buf)
    return buf.getvalue()


def _table(df: pd.DataFrame, table_id: str, caption: str) -> str:
    return f'<h3 id="{table_id}-title">{html.escape(caption)}</h3>' + df.to_html(
        index=False, table_id=table_id, escape=True, border=0, classes="data"
    )


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table.data{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}table.data td,table.data th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:right}
img{max-width:100%;display:block;margin:.5em 0}pre{background:#f6f6f6;padding:.8em;font-size:12px;overflow:auto}figure{margin:1em 0 2em}"""


def build_report(out: Path) -> Report:
    """Figures under ``out/figures`` and ``out/report.html`` (both regenerated from the saved results)."""
    manifest = read_manifest(out)
    df = read_results(out)
    if df.empty:
        raise SwarmplanError("DIR", f"{out / store.RESULTS} has no rows", "rerun the sweep")
    spec = manifest["spec"]
    made = make_figures(out, manifest, df)
    sessions = []
    if (out / store.SESSIONS).exists():
        sessions = [json.loads(line) for line in (out / store.SESSIONS).read_text().splitlines() if line.strip()]
    settings = pd.DataFrame(
        [
            {"setting": "scenario", "value": f"{manifest['scenario_name']} ({spec['scenario']})"},
            {"setting": "swarmplan version", "value": manifest["version"]},
            {"setting": "methods", "value": ", ".join(spec["methods"])},
            {"setting": "grid", "value": "; ".join(f"{'+'.join(a['keys'])} ∈ {a['values']}" for a in spec["axes"]) or "none"},
            {"setting": "cells × runs", "value": f"{len(manifest['cells'])} × {spec['runs']}"},
            {"setting": "requests per run", "value": spec["requests"] or "each cell's workload.n_requests"},
            {
                "setting": "seed",
                "value": f"{spec['seed']} (run r of every cell uses SeedSequence([{spec['seed']}, r]): "
                "the same swarm draw and arrivals in every cell)",
            },
            {"setting": "timing profile / PETALS cache test", "value": f"{spec['profile']} / {spec['cache_test']}"},
            {"setting": "--set overrides", "value": " ".join(spec["sets"]) or "none"},
            {"setting": "command", "value": " ".join(manifest["command"])},
        ]
    )
    tables = [
        ("settings", "Settings", settings),
        ("methods-overall", "Per method, mean over all cells and runs", method_table(df, spec["methods"])),
    ]
    for metric in ("per_token_s", "response_mean_s"):
        tables.append(
            (
                f"cells-{metric}",
                f"{figures.LABELS[metric]} per cell: mean ± 95 % CI half-width over {spec['runs']} runs",
                cell_table(df, manifest, metric),
            )
        )
    if sessions:
        tables.append(
            (
                "sessions",
                "Sessions (each run or resume of the sweep)",
                pd.DataFrame(
                    [{k: s.get(k) for k in ("started", "executor", "ran", "skipped", "wall_s", "command")} for s in sessions]
                ).assign(command=lambda d: d["command"].map(" ".join)),
            )
        )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>swarmplan sweep: "
        f"{html.escape(manifest['scenario_name'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Sweep of {html.escape(manifest['scenario_name'])}</h1>",
        f"<p>{len(manifest['cells'])} cells × {spec['runs']} Monte Carlo runs × {len(spec['methods'])} methods; "
        f"every method sees the same swarm draw and arrivals in a run. Generated by swarmplan "
        f"{html.escape(manifest['version'])}.</p>",
        "<h2>Figures</h2>",
    ]
    for caption, paths in made:
        png = next(p for p in paths if p.suffix == ".png")
        svg = next((p for p in paths if p.suffix == ".svg"), None)
        parts.append(f"<figure>{_img(png, svg)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Tables</h2>")
    parts += [_table(t, tid, cap) for tid, cap, t in tables]
    parts.append("<h2>Scenario (before the grid's overrides)</h2><pre>" + html.escape(_yaml(manifest["scenario"])) + "</pre>")
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return Report(path, [p for _, ps in made for p in ps], [tid for tid, _, _ in tables])
