"""Request streams: seeded Poisson arrivals, trace replay or explicit arrival times; fixed or trace lengths
(docs/model.md §9.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.files import finite_number, read_csv_rows, read_text
from swarmplan.scenario.limits import BYTES_PER_REQUEST, require_fits
from swarmplan.scenario.models import WorkloadSpec

BUILTIN_TRACES = {
    "azure-code": "AzureLLMInferenceTrace_code.csv",
    "azure-conv": "AzureLLMInferenceTrace_conv.csv",
}


@dataclass(frozen=True)
class Workload:
    """One realisation of the request stream; arrays indexed by request."""

    arrival_ms: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    client: np.ndarray
    service_factor: np.ndarray | None = None  # multiplies each request's service time; None = 1

    @property
    def n(self) -> int:
        return len(self.arrival_ms)

    @property
    def factors(self) -> np.ndarray:
        return np.ones(self.n) if self.service_factor is None else self.service_factor

    def head(self, n: int) -> "Workload":
        f = None if self.service_factor is None else self.service_factor[:n]
        return Workload(self.arrival_ms[:n], self.input_tokens[:n], self.output_tokens[:n], self.client[:n], f)


@dataclass(frozen=True)
class Trace:
    offset_ms: np.ndarray  # arrival times relative to the first request
    input_tokens: np.ndarray
    output_tokens: np.ndarray


@lru_cache(maxsize=8)
def _read_trace_file(path: str) -> Trace:
    rows = read_csv_rows(
        path,
        "workload.trace",
        {"TIMESTAMP", "ContextTokens", "GeneratedTokens"},
        "give a CSV with columns TIMESTAMP,ContextTokens,GeneratedTokens",
    )
    try:
        # 7 fractional digits (100 ns): keep microseconds.
        stamps = [datetime.fromisoformat(r["TIMESTAMP"].strip()[:26]) for r in rows]
        t0 = stamps[0]
        offset = np.array([(s - t0).total_seconds() * 1000.0 for s in stamps])
        l_in = np.array([int(r["ContextTokens"]) for r in rows])
        l_out = np.array([int(r["GeneratedTokens"]) for r in rows])
    except (ValueError, TypeError, OverflowError) as exc:
        raise SwarmplanError("workload.trace", f"{path}: unreadable row ({exc})", "fix or remove that row")
    if (l_in < 1).any() or (l_out < 1).any():
        raise SwarmplanError("workload.trace", f"{path}: token counts must be ≥ 1", "drop rows with 0 tokens")
    back = np.flatnonzero(np.diff(offset) < 0)
    if back.size:
        k = int(back[0]) + 1  # 0-based data row that goes back in time; +2 for the file line (header is line 1)
        raise SwarmplanError(
            "workload.trace",
            f"{path}:{k + 2}: TIMESTAMP {rows[k]['TIMESTAMP'].strip()} is earlier than the row before it",
            "sort the rows by TIMESTAMP",
        )
    return Trace(offset, l_in, l_out)


def load_trace(ref: str, base_dir: Path | None = None) -> Trace:
    if ref in BUILTIN_TRACES:
        with resources.as_file(
            resources.files("swarmplan.scenario").joinpath("data").joinpath("traces").joinpath(BUILTIN_TRACES[ref])
        ) as p:
            return _read_trace_file(str(p))
    path = _resolve(ref, base_dir)
    if not path.exists():
        raise SwarmplanError(
            "workload.trace",
            f"no built-in trace or file named {ref!r}",
            f"use one of {', '.join(BUILTIN_TRACES)} or an existing CSV path",
        )
    return _read_trace_file(str(path))


def _resolve(ref: str, base_dir: Path | None) -> Path:
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return path


@lru_cache(maxsize=8)
def _read_times_file(path: str) -> np.ndarray:
    field = "workload.arrival_times_file"
    times = []
    for k, line in enumerate(read_text(path, field, "text file of arrival times").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            t = finite_number(text, field, f"{path}:{k}", "arrival time")
            if t < 0:
                raise SwarmplanError(field, f"{path}:{k}: arrival time {t:g} s is negative", "give times ≥ 0 s")
            if times and t < times[-1]:
                raise SwarmplanError(
                    field,
                    f"{path}:{k}: arrival time {t:g} s is earlier than the line before it ({times[-1]:g} s)",
                    "sort the times",
                )
            times.append(t)
    if not times:
        raise SwarmplanError(field, f"{path} holds no arrival times", "write one time in seconds per line")
    return np.array(times)


def load_arrival_times(ref: str, base_dir: Path | None = None) -> np.ndarray:
    """Arrival times (s) from a plain file: one number per line, non-decreasing; # starts a comment."""
    path = _resolve(ref, base_dir)
    if not path.exists():
        raise SwarmplanError(
            "workload.arrival_times_file",
            f"no file named {ref!r}",
            "give an existing file (relative paths are taken from the scenario's folder)",
        )
    return _read_times_file(str(path))


def explicit_arrivals_ms(spec: WorkloadSpec, n: int, base_dir: Path | None) -> np.ndarray:
    """docs/scenarios.md — ``arrivals: times``: the first ``n`` given arrival times, in ms."""
    if spec.arrival_times_s is not None:
        times, field = np.asarray(spec.arrival_times_s, dtype=float), "workload.arrival_times_s"
    else:
        times, field = load_arrival_times(spec.arrival_times_file, base_dir), "workload.arrival_times_file"
    if n > len(times):
        raise SwarmplanError(
            "workload.n_requests",
            f"{n} requests but {field} gives only {len(times)} arrival times",
            f"ask for at most {len(times)} requests",
        )
    return times[:n] * 1000.0


def poisson_arrivals_ms(rate_per_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """docs/model.md §9.1 — i.i.d. exponential gaps of mean 1/λ, the first gap 0 (as the authors' code)."""
    gaps = rng.exponential(1000.0 / rate_per_s, size=n)
    gaps[0] = 0.0
    return np.cumsum(gaps)


def draw_workload(
    spec: WorkloadSpec, n_clients: int, rng: np.random.Generator, n_requests: int | None = None, base_dir: Path | None = None
) -> Workload:
    n = n_requests or spec.n_requests
    require_fits(
        "workload.n_requests",
        n,
        BYTES_PER_REQUEST,
        "requests",
        "simulate fewer requests per run (workload.n_requests or --requests)",
    )
    trace = load_trace(spec.trace, base_dir) if spec.trace else None
    if spec.arrivals == "times":
        arrival = explicit_arrivals_ms(spec, n, base_dir)
        rows = rng.integers(0, len(trace.offset_ms), size=n) if trace is not None else None
    elif spec.arrivals == "trace":
        if n > len(trace.offset_ms):
            raise SwarmplanError(
                "workload.n_requests",
                f"the trace has only {len(trace.offset_ms)} requests",
                f"ask for at most {len(trace.offset_ms)}",
            )
        arrival = trace.offset_ms[:n].copy()
        rows = np.arange(n)
    else:
        arrival = poisson_arrivals_ms(spec.rate_per_s, n, rng)
        rows = rng.integers(0, len(trace.offset_ms), size=n) if trace is not None else None
    if spec.lengths == "trace":
        l_in, l_out = trace.input_tokens[rows], trace.output_tokens[rows]
    else:
        l_in = np.full(n, spec.input_tokens)
        l_out = np.full(n, spec.output_tokens)
    client = rng.integers(0, n_clients, size=n) if n_clients > 1 else np.zeros(n, dtype=int)
    factor = rng.exponential(1.0, size=n) if spec.service == "exponential" else None
    return Workload(arrival, l_in.astype(np.int64), l_out.astype(np.int64), client.astype(np.int64), factor)


def nominal_lengths(spec: WorkloadSpec, base_dir: Path | None = None) -> tuple[int, int, int]:
    """(l_in, l_out, cache tokens) that placement plans for: fixed values, or the trace's means."""
    if spec.lengths == "trace":
        tr = load_trace(spec.trace, base_dir)
        l_in, l_out = int(round(tr.input_tokens.mean())), int(round(tr.output_tokens.mean()))
    else:
        l_in, l_out = spec.input_tokens, spec.output_tokens
    return l_in, l_out, spec.cache_tokens or (l_in + l_out)
