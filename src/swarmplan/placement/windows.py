"""Window choice rules shared by PETALS block selection and CG-BP (docs/model.md §4.3, §5.2)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def lexicographic_min_window(values: np.ndarray, width: int) -> int:
    """docs/model.md §4.3 — the start (0-based) whose ascending-sorted window of ``values`` is
    lexicographically smallest; full ties go to the smallest start (PETALS' choose_best_blocks)."""
    windows = np.sort(sliding_window_view(values, width), axis=1)
    # lexsort: the last key is primary, so pass columns from last to first; it is stable (ties → index).
    return int(np.lexsort(windows.T[::-1])[0])


def max_sum_window_touching(values: np.ndarray, width: int, mask: np.ndarray) -> int:
    """docs/model.md §5.2 step a — among windows containing at least one ``mask`` block, the start (0-based)
    with the largest sum of ``values``; ties go to the smallest start (strictly larger sums win)."""
    sums = sliding_window_view(values, width).sum(axis=1)
    touches = sliding_window_view(mask, width).any(axis=1)
    sums = np.where(touches, sums, -np.inf)
    return int(np.argmax(sums))
