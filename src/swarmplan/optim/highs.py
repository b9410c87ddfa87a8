"""Build a MILP from sparse triplets and solve it with HiGHS (highspy).

Columns and rows are added in blocks of numpy arrays (no per-term Python expressions), which keeps
large models cheap to build (DESIGN: 0.1 s vs 0.6–1.6 s through expression layers).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import coo_matrix

from swarmplan.scenario.limits import clamp_workers

INF = highspy.kHighsInf


@dataclass(frozen=True)
class Solution:
    status: str  # "optimal", "time limit", "infeasible", …
    objective: float | None  # best integer solution found (model units)
    bound: float | None  # best proven lower bound
    gap: float | None  # relative gap, (objective − bound) / objective
    seconds: float
    x: np.ndarray | None

    @property
    def has_solution(self) -> bool:
        return self.x is not None


@contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (C libraries included) to descriptor 2 while inside, so a
    command's stdout stays one JSON document under ``--json`` (HiGHS prints its banner and log with printf)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (e.g. a closed descriptor): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        finally:
            os.dup2(saved, 1)
            os.close(saved)


class Milp:
    def __init__(self) -> None:
        self._lb: list[np.ndarray] = []
        self._ub: list[np.ndarray] = []
        self._cost: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._rows_lb: list[np.ndarray] = []
        self._rows_ub: list[np.ndarray] = []
        self._ri: list[np.ndarray] = []
        self._ci: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self.n_cols = 0
        self.n_rows = 0

    def add_vars(self, n: int, lb=0.0, ub=INF, cost=0.0, integer: bool = False) -> np.ndarray:
        """Add ``n`` columns; returns their indices."""
        idx = np.arange(self.n_cols, self.n_cols + n)
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (n,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (n,)).copy())
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=float), (n,)).copy())
        self._int.append(np.full(n, integer))
        self.n_cols += n
        return idx

    def add_rows(self, row, col, val, lb, ub) -> np.ndarray:
        """Add rows given as triplets with *local* row numbers 0..k−1; ``lb``/``ub`` per local row."""
        row = np.asarray(row, dtype=np.int64)
        lb = np.atleast_1d(np.asarray(lb, dtype=float))
        ub = np.atleast_1d(np.asarray(ub, dtype=float))
        k = max(len(lb), len(ub), int(row.max()) + 1 if row.size else 0)
        lb = np.broadcast_to(lb, (k,)).copy()
        ub = np.broadcast_to(ub, (k,)).copy()
        self._ri.append(row + self.n_rows)
        self._ci.append(np.asarray(col, dtype=np.int64))
        self._v.append(np.broadcast_to(np.asarray(val, dtype=float), row.shape).copy())
        self._rows_lb.append(lb)
        self._rows_ub.append(ub)
        idx = np.arange(self.n_rows, self.n_rows + k)
        self.n_rows += k
        return idx

    def add_row(self, cols, vals, lb=-INF, ub=INF) -> int:
        cols = np.asarray(cols, dtype=np.int64)
        return int(self.add_rows(np.zeros(len(cols), dtype=np.int64), cols, vals, [lb], [ub])[0])

    def solve(
        self,
        time_limit: float | None = None,
        rel_gap: float = 1e-4,
        threads: int | None = None,
        verbose: bool = False,
        start: np.ndarray | None = None,
        relax: bool = False,
    ) -> Solution:
        with stdout_to_stderr():  # HiGHS' banner (printed when the object is made) and its log are C-level stdout
            return self._solve(time_limit, rel_gap, threads, verbose, start, relax)

    def _solve(self, time_limit, rel_gap, threads, verbose, start, relax) -> Solution:
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(verbose))
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_rel_gap", float(rel_gap))
        if threads is not None:  # at least 1, at most the CPUs this process may use
            h.setOptionValue("threads", clamp_workers(max(1, int(threads)))[0])
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_cols, self.n_rows
        lp.col_cost_ = np.concatenate(self._cost) if self._cost else np.zeros(0)
        lp.col_lower_ = np.concatenate(self._lb) if self._lb else np.zeros(0)
        lp.col_upper_ = np.concatenate(self._ub) if self._ub else np.zeros(0)
        lp.row_lower_ = np.concatenate(self._rows_lb) if self._rows_lb else np.zeros(0)
        lp.row_upper_ = np.concatenate(self._rows_ub) if self._rows_ub else np.zeros(0)
        rows = np.concatenate(self._ri) if self._ri else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(self._ci) if self._ci else np.zeros(0, dtype=np.int64)
        vals = np.concatenate(self._v) if self._v else np.zeros(0)
        a = coo_matrix((vals, (rows, cols)), shape=(self.n_rows, self.n_cols)).tocsc()
        a.sum_duplicates()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        is_int = np.concatenate(self._int) if self._int else np.zeros(0, dtype=bool)
        if not relax and is_int.any():
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in is_int]
        h.passModel(lp)
        if start is not None and not relax:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        status = h.getModelStatus()
        info = h.getInfo()
        name = h.modelStatusToString(status).lower()
        mip = not relax and is_int.any()
        has = (
            (info.primal_solution_status == 2)
            if hasattr(info, "primal_solution_status")
            else status == highspy.HighsModelStatus.kOptimal
        )
        x = np.array(h.getSolution().col_value) if has else None
        obj = float(info.objective_function_value) if has else None
        if mip:
            bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None
        else:
            bound = obj if status == highspy.HighsModelStatus.kOptimal else None
        gap = None
        if obj is not None and bound is not None:
            gap = max(0.0, (obj - bound) / abs(obj)) if obj != 0 else 0.0
        return Solution(name, obj, bound, gap, seconds, x)
