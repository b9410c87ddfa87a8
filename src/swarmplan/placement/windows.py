"""Window choice rules shared by PETALS block selection and CG-BP (docs/model.md §4.3, §5.2).

Both rules run once per server, so at 10⁴ servers their fixed cost matters: the window index matrices are
cached per (length, width), and the lexicographic rule sorts only the windows that tie on their minimum
(the first key). The lexicographic rule only compares values (no arithmetic), so a compiled loop gives the
same answer bit for bit and runs when numba is enabled (PETALS' joins and CG-BP's servers past its first K
call it once per server). ``*_reference`` are the plain definitions the tests compare against.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from swarmplan.perf.jit import ENABLED as JIT_ENABLED
from swarmplan.perf.jit import njit


@lru_cache(maxsize=256)
def _window_index(length: int, width: int) -> np.ndarray:
    """Row s = the indices s .. s + width − 1 (read-only, shared)."""
    idx = np.arange(length - width + 1)[:, None] + np.arange(width)[None, :]
    idx.setflags(write=False)
    return idx


def lexicographic_min_window(values: np.ndarray, width: int) -> int:
    """docs/model.md §4.3 — the start (0-based) whose ascending-sorted window of ``values`` is
    lexicographically smallest; full ties go to the smallest start (PETALS' choose_best_blocks)."""
    if JIT_ENABLED:
        s = _lex_min_window_kernel(np.ascontiguousarray(values, dtype=np.float64), int(width))
        if s >= 0:
            return int(s)
    return _lex_min_window_numpy(values, width)


@njit
def _lex_min_window_kernel(values, width):  # pragma: no cover - compiled
    """``lexicographic_min_window`` by comparisons only: window minima, then the windows tied on the least
    minimum sorted and compared in start order (a later start must be strictly smaller). −1 when a value is
    NaN (the NumPy path decides then)."""
    for x in values:
        if x != x:
            return -1
    nwin = len(values) - width + 1
    lows = np.empty(nwin)
    for s in range(nwin):
        lo = values[s]
        for t in range(s + 1, s + width):
            if values[t] < lo:
                lo = values[t]
        lows[s] = lo
    least = lows.min()
    best = -1
    kept = np.empty(width)
    cur = np.empty(width)
    for s in range(nwin):
        if lows[s] != least:
            continue
        for t in range(width):  # insertion sort of the window into ``cur`` (widths are at most L)
            x = values[s + t]
            u = t
            while u > 0 and cur[u - 1] > x:
                cur[u] = cur[u - 1]
                u -= 1
            cur[u] = x
        if best < 0:
            best = s
            kept[:] = cur
            continue
        for t in range(width):
            if cur[t] < kept[t]:
                best = s
                kept[:] = cur
                break
            if cur[t] > kept[t]:
                break
    return best


def take_windows(values: np.ndarray, servers, widths, amounts, starts: np.ndarray) -> None:
    """In turn, each of ``servers`` with a width > 0 takes ``lexicographic_min_window(values, width_j)`` and
    adds ``amounts[j]`` over it (PETALS' joins, §4.3; CG-BP's servers after K, §5.2). Writes the 0-based
    starts into ``starts`` and updates ``values`` in place; one compiled loop when numba is enabled (the same
    comparisons and the same elementwise additions, so the same floats)."""
    servers = np.asarray(servers, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    amounts = np.asarray(amounts, dtype=np.float64)
    if JIT_ENABLED and values.dtype == np.float64 and np.isfinite(values).all() and np.isfinite(amounts[servers]).all():
        _take_windows_kernel(values, servers, widths, amounts, starts)
        return
    for j in servers.tolist():
        w = int(widths[j])
        if w > 0:
            s = lexicographic_min_window(values, w)
            starts[j] = s
            values[s : s + w] += amounts[j]


@njit
def _take_windows_kernel(values, servers, widths, amounts, starts):  # pragma: no cover - compiled
    for j in servers:
        w = widths[j]
        if w > 0:
            s = _lex_min_window_kernel(values, w)
            starts[j] = s
            values[s : s + w] += amounts[j]


def _lex_min_window_numpy(values: np.ndarray, width: int) -> int:
    windows = values[_window_index(len(values), width)]
    lows = windows.min(axis=1)
    cand = np.flatnonzero(lows == lows.min())  # the first key of the order decides unless it ties
    if len(cand) == 1:
        return int(cand[0])
    tied = np.sort(windows[cand], axis=1)
    return int(cand[np.lexsort(tied.T[::-1])[0]])


def max_sum_window_touching(values: np.ndarray, width: int, mask: np.ndarray) -> int:
    """docs/model.md §5.2 step a — among windows containing at least one ``mask`` block, the start (0-based)
    with the largest sum of ``values``; ties go to the smallest start (strictly larger sums win)."""
    idx = _window_index(len(values), width)
    sums = values[idx].sum(axis=1)
    touches = mask[idx].any(axis=1)
    sums = np.where(touches, sums, -np.inf)
    return int(np.argmax(sums))


def lexicographic_min_window_reference(values: np.ndarray, width: int) -> int:
    windows = np.sort(sliding_window_view(values, width), axis=1)
    # lexsort: the last key is primary, so pass columns from last to first; it is stable (ties → index).
    return int(np.lexsort(windows.T[::-1])[0])


def max_sum_window_touching_reference(values: np.ndarray, width: int, mask: np.ndarray) -> int:
    sums = sliding_window_view(values, width).sum(axis=1)
    touches = sliding_window_view(mask, width).any(axis=1)
    sums = np.where(touches, sums, -np.inf)
    return int(np.argmax(sums))
