"""Figures and ``swarmplan report``: confidence intervals on worked numbers, and a self-contained page that
embeds every figure and table."""

import base64
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from swarmplan.cli.progress import LogProgress
from swarmplan.experiments import figures
from swarmplan.experiments.grid import parse_axis
from swarmplan.experiments.sweep import SweepSpec, run_sweep


def test_ci95_on_worked_numbers():
    mean, half = figures.ci95([1.0, 2.0, 3.0])
    # s = 1, n = 3, t_{0.975, 2} = 4.302653 → 4.302653 / √3 = 2.484138
    assert mean == 2.0 and half == pytest.approx(2.484138, abs=1e-6)
    assert figures.ci95([5.0]) == (5.0, 0.0)
    assert math.isnan(figures.ci95([])[0])


def test_curve_points_average_runs_per_x():
    df = pd.DataFrame({"x": [2, 2, 1, 1, 2, 2], "method": ["a", "a", "a", "a", "b", "b"], "m": [1, 3, 10, 10, 4, 4]})
    xs, mean, half = figures.curve_points(df, "x", "m", "a")
    assert (
        xs == [1, 2] and list(mean) == [10, 2] and half[0] == 0 and half[1] == pytest.approx(12.706205, rel=1e-6)
    )  # t_{0.975,1}·√2/√2


def test_log_progress_extrapolates_from_this_sessions_tasks():
    lines, now = [], [100.0]

    class Sink:
        def write(self, s):
            lines.append(s)

        def flush(self):
            pass

    p = LogProgress("sweep", every_s=5, stream=Sink(), clock=lambda: now[0])
    p(4, 20)  # 4 done by an earlier session
    now[0] = 110.0
    p(9, 20)  # 5 tasks in 10 s → 11 left take 22 s
    text = "".join(lines)
    assert "4/20 tasks (20 %)" in text and "9/20 tasks (45 %), 10s elapsed, ETA 22s" in text
    now[0] = 111.0
    p(10, 20)  # within every_s: no line
    assert "10/20" not in "".join(lines)
    p(20, 20)  # the last one always prints
    assert "20/20 tasks (100 %)" in "".join(lines)


def test_report_embeds_every_figure_and_table(tmp_path, run_cli):
    out = tmp_path / "s"
    spec = SweepSpec(
        "paper-abvt",
        (parse_axis("workload.rate_per_s=0.2,0.6,1.0"),),
        ("petals", "cg-bprr"),
        runs=2,
        requests=10,
        keep_requests=True,
    )
    run_sweep(spec, out, command=["swarmplan", "sweep", "test-command"])
    code, stdout, err = run_cli("report", str(out), "--json")
    assert code == 0, err
    rep = json.loads(stdout)
    page = (out / "report.html").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    svgs = sorted((out / "figures").glob("*.svg"))
    assert len(pngs) == len(svgs) == 5  # 3 metrics vs the axis, bars, CDF
    assert sorted(rep["figures"]) == sorted(map(str, pngs + svgs)) and rep["report"] == str(out / "report.html")
    for p in pngs:
        assert f"data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" in page, p.name
    for p in svgs:
        assert f"data:image/svg+xml;base64,{base64.b64encode(p.read_bytes()).decode()}" in page, p.name
    assert set(rep["tables"]) == {"settings", "methods-overall", "cells-per_token_s", "cells-response_mean_s", "sessions"}
    for tid in rep["tables"]:
        assert f'id="{tid}"' in page
    # Self-contained: nothing is fetched from elsewhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    for text in ("test-command", "paper-abvt", "SeedSequence([0, r])", "workload.rate_per_s", "0.1.0", "rate_per_s: 0.5"):
        assert text in page, text
    # The tables hold the numbers: PETALS' per-token mean at the first cell.
    df = pd.read_parquet(out / "results.parquet")
    first = df[(df["cell"] == 0) & (df["method"] == "petals")]["per_token_s"]
    assert f"{np.mean(first):.4g} ±" in page
    code, _, err = run_cli("report", str(tmp_path))
    assert code == 2 and "holds no sweep" in err


def test_placement_figure_draws_each_chain_over_its_blocks():
    from swarmplan.routing.gca import Chain

    fig = figures.placement_figure(
        ["a", "b", "c"], ["big", "small", "small"], [1, 30, 0], [41, 41, 0], 70, [Chain((0, 1), (41, 29), 100.0, 3)]
    )
    ax = fig.axes[0]
    line = ax.lines[0]
    assert list(line.get_xdata()) == [0.5, 41.5, 41.5, 70.5]  # a: blocks 1–41, b: blocks 42–70
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]  # by first block; empty server last
    assert len(ax.patches) == 2  # one bar per server holding blocks
    figures.plt.close(fig)


def test_compare_and_plan_plot_beside_their_outputs(run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, _, err = run_cli(
        "compare", "--methods", "petals,cg-bprr", "--runs", "2", "--requests", "10", "--out", str(out), "--plot"
    )
    assert code == 0, err
    for name in ("methods-bars", "response-cdf"):
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    code, _, err = run_cli("compare", "--runs", "1", "--requests", "5", "--plot")
    assert code == 2 and "--plot" in err and "--out" in err
    code, stdout, err = run_cli("plan", "paper-abvt", "--method", "gbp-cr", "--json", "--plot", "--out", str(tmp_path / "pl"))
    assert code == 0, err
    assert json.loads(stdout)["method"] == "gbp-cr" and "placement.png" in err
    assert (tmp_path / "pl" / "placement.svg").exists()
    code, _, err = run_cli("plan", "paper-abvt", "--plot", "--out", str(tmp_path / "pl"))
    assert code == 2 and "would overwrite" in err
