"""Peak bytes the simulator holds per request (the basis of scenario.limits.BYTES_PER_REQUEST).

Usage: python benchmarks/memory_per_request.py [--requests 20000] [--method cg-bprr]
Measures with tracemalloc the peak of one `compare` run of one method with per-request rows kept (as
`simulate` does for its table; `compare --out` streams them instead: docs/research.md §8), for N and 2N
requests; the slope is the cost of one request.
"""

from __future__ import annotations

import argparse
import tracemalloc

from swarmplan.experiments.compare import compare
from swarmplan.methods.registry import get_methods
from swarmplan.scenario.limits import BYTES_PER_REQUEST
from swarmplan.scenario.loader import load_scenario


def peak_bytes(n: int, method: str) -> int:
    sc, base = load_scenario("paper-abvt", ["workload.rate_per_s=0.05"])
    tracemalloc.start()
    compare(sc, get_methods([method]), 1, n, 0, "fair", base_dir=base, keep_rows=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--method", default="cg-bprr")
    args = ap.parse_args()
    n = args.requests
    a, b = peak_bytes(n, args.method), peak_bytes(2 * n, args.method)
    per = (b - a) / n
    print(
        f"{args.method}: peak {a / 2**20:.1f} MiB for {n} requests, {b / 2**20:.1f} MiB for {2 * n}: "
        f"{per:.0f} bytes per request (limit assumes {BYTES_PER_REQUEST})"
    )


if __name__ == "__main__":
    main()
