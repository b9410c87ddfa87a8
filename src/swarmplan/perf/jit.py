"""Optional numba compilation of hot loops (install the ``fast`` extra; SWARMPLAN_NUMBA=0 turns it off).

Every jitted function is plain Python that numba compiles unchanged; without numba (or with it turned off)
the same function runs as Python, so the results never depend on whether numba is there (tests run both).
"""

from __future__ import annotations

import os

try:  # numba is an optional extra
    import numba as _numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    _numba = None

ENABLED = _numba is not None and os.environ.get("SWARMPLAN_NUMBA", "1") != "0"


def njit(fn):
    """Compile ``fn`` with numba (no fastmath: IEEE results equal to Python's) when enabled, else return it."""
    if not ENABLED:
        return fn
    return _numba.njit(cache=True, nogil=True)(fn)
