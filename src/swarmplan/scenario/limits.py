"""Counts bounded by what this machine can hold: check before allocating, and say so when it cannot.

A count that sizes arrays (requests, blocks × servers) is compared with the memory the operating system
reports as available (``MemAvailable`` in /proc/meminfo; else physical memory), so an over-large count ends
in one line naming the field instead of a MemoryError or a swapping machine.
"""

from __future__ import annotations

import os

from swarmplan.errors import SwarmplanError

# Bytes the simulator keeps per request: the workload's five arrays, the per-request result arrays, the chain
# and block tuples and, with rows kept in memory (simulate's table; compare streams them to disk), one row
# dict of 13 fields. Measured with tracemalloc
# (benchmarks/memory_per_request.py, paper-abvt, rows kept): 939 B for cg-bprr, 997 B for petals. Chains of
# more servers make longer rows, so the check counts 4 KiB: it guards against counts off by orders of
# magnitude (1e11 requests), not against the last gigabyte.
BYTES_PER_REQUEST = 4096


def available_bytes() -> int:
    """Memory the OS says a new allocation can use now."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1


def require_fits(field: str, count: int, bytes_each: int, what: str, fix: str) -> None:
    """Raise when ``count`` items of ``bytes_each`` bytes exceed the available memory."""
    need = int(count) * int(bytes_each)
    have = available_bytes()
    if need > have:
        raise SwarmplanError(
            field, f"{count:,} {what} need about {_gib(need)} of memory; this machine has {_gib(have)} available", fix
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def clamp_workers(requested: int, useful: int | None = None) -> tuple[int, str | None]:
    """Worker processes to start: at most the CPUs this process may use (and ``useful``, the number of tasks).
    Returns the count and a note when it was lowered."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    limit = cpus if useful is None else max(1, min(cpus, useful))
    if requested <= limit:
        return requested, None
    why = f"{cpus} CPUs" if useful is None or cpus <= useful else f"{useful} tasks"
    return limit, f"using {limit} workers, not {requested}: there are only {why}"
