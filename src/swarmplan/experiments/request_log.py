"""Per-request rows of ``compare`` and ``simulate``, computed a chunk at a time and streamed to CSV
(docs/research.md §8).

A run's per-request results live in the simulator's NumPy arrays (``sim.result.SimResult``); a row is only
made when it is written, ``chunk`` rows at a time, so writing 10⁶ requests holds one chunk of rows, not 10⁶
dicts. The values are those of the row-by-row definition: times in seconds rounded to 6 decimals
(``numpy.round``, which is what Python's ``round`` does on a NumPy float), chains as server names joined by
``>``, so the file is byte-identical to writing every row through ``csv.DictWriter``. A request churn left
unserved to the end has an empty chain and a NaN response.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from swarmplan.sim.result import SimResult

REQUEST_FIELDS = (
    "run",
    "method",
    "request",
    "arrival_s",
    "input_tokens",
    "output_tokens",
    "chain",
    "blocks",
    "wait_s",
    "ttft_s",
    "completion_s",
    "response_s",
    "per_token_s",
)
CHUNK_ROWS = 4096  # rows made at once when streaming: ~2 MB of Python objects (larger chunks were no faster)


def _seconds(ms: np.ndarray) -> list[float]:
    return np.round(ms / 1000, 6).tolist()


def request_columns(run: int, result: SimResult, names: tuple[str, ...], start: int = 0, stop: int | None = None) -> list[list]:
    """The columns of rows ``start``..``stop`` of one run of one method, in ``REQUEST_FIELDS`` order."""
    size = (result.workload.n if stop is None else stop) - start
    return next(chunks(run, result, names, size, start), [[] for _ in REQUEST_FIELDS])


def request_rows(run: int, result: SimResult, names: tuple[str, ...]) -> list[dict]:
    """Every row of one run of one method as dicts (in memory: for small runs, tables and tests)."""
    return [dict(zip(REQUEST_FIELDS, values)) for values in zip(*request_columns(run, result, names))]


def chunks(run: int, result: SimResult, names: tuple[str, ...], size: int, start: int = 0) -> Iterator[list[list]]:
    """Columns of ``size`` rows at a time from request ``start`` on; the run's derived arrays (response,
    first-token time) are computed once, as NumPy arrays, and sliced."""
    wl = result.workload
    resp, ttft = result.response_ms, result.ttft_ms
    size = max(size, 1)
    for a in range(start, wl.n, size):
        sl = slice(a, min(a + size, wl.n))
        chain_text: dict[tuple, str] = {}  # chains repeat: join each distinct one once (per chunk: bounded)
        block_text: dict[tuple, str] = {}
        arrival, l_out, r = wl.arrival_ms[sl], wl.output_tokens[sl], resp[sl]
        chains, blocks = [], []
        for servers, ks in zip(result.chains[sl], result.processed[sl]):
            if servers is None:  # never served: churn left its blocks uncovered to the end (response NaN)
                chains.append("")
                blocks.append("")
                continue
            c = chain_text.get(servers)
            if c is None:
                c = chain_text[servers] = ">".join(names[j] for j in servers)
            b = block_text.get(ks)
            if b is None:
                b = block_text[ks] = ">".join(map(str, ks))
            chains.append(c)
            blocks.append(b)
        n = len(chains)
        yield [
            [run] * n,
            [result.method] * n,
            list(range(sl.start, sl.stop)),
            _seconds(arrival),
            wl.input_tokens[sl].tolist(),
            l_out.tolist(),
            chains,
            blocks,
            _seconds(result.wait_ms[sl]),
            _seconds(ttft[sl]),
            _seconds(arrival + r),
            _seconds(r),
            _seconds(r / l_out),
        ]


class RequestCsv:
    """Appends per-request rows to one CSV as runs finish, ``chunk`` rows at a time.

    The rows go to ``PATH.partial`` and ``close()`` renames it into place, so a killed run leaves no
    truncated file under the final name. The file is created at the first row: with no rows (only split
    methods ran) there is no file, as before. ``header=False`` writes a part that ``concatenate`` joins.
    ``most_rows_held`` is the largest number of rows it ever had made at once (at most ``chunk``)."""

    def __init__(self, path: Path, header: bool = True, chunk: int = CHUNK_ROWS):
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.path, self.header, self.chunk = Path(path), header, chunk
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.rows_written = 0
        self.most_rows_held = 0
        self._fh = None
        self._writer = None

    def write(self, run: int, result: SimResult, names: tuple[str, ...]) -> None:
        """The rows of one method's run, in request order."""
        for cols in chunks(run, result, names, self.chunk):
            self._write_columns(cols)

    def _write_columns(self, cols: list[list]) -> None:
        if self._writer is None:
            self._fh = open(self.partial, "w", newline="")
            self._writer = csv.writer(self._fh)
            if self.header:
                self._writer.writerow(REQUEST_FIELDS)
        n = len(cols[0])
        self.most_rows_held = max(self.most_rows_held, n)
        self._writer.writerows(zip(*cols))
        self.rows_written += n

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no row was written."""
        if self._fh is None:
            return None
        self._fh.close()
        self._fh = self._writer = None
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Drop what was written (the run failed)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = self._writer = None
        self.partial.unlink(missing_ok=True)


def concatenate(parts: list[Path], out: Path) -> Path | None:
    """Join header-less parts (in the order given; missing parts had no rows) under one header into ``out``."""
    import shutil

    present = [p for p in parts if p.exists()]
    if not present:
        return None
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", newline="") as dst:
        csv.writer(dst).writerow(REQUEST_FIELDS)
        for p in present:
            with open(p, newline="") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, out)
    return out
