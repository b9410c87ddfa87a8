"""The research workflow's optional dependencies (the ``research`` extra): a clear error when one is missing."""

from __future__ import annotations

import importlib.util

from swarmplan.errors import SwarmplanError

RESEARCH = {"pyarrow": "pyarrow", "pandas": "pandas", "matplotlib": "matplotlib"}


def require(*modules: str, what: str = "this command") -> None:
    """Raise SwarmplanError naming the missing packages and the extra that installs them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SwarmplanError(what, f"needs {', '.join(missing)}, which is not installed", 'pip install "swarmplan[research]"')


def require_research(what: str) -> None:
    require(*RESEARCH, what=what)
