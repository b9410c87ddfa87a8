"""A sweep's folder on disk: one Parquet part per finished (cell, run), compacted into one table (docs/research.md §2).

A part is written to a temporary name, flushed to disk and renamed, so it either exists whole or not at
all; its existence is the "done" marker that lets a killed sweep resume without redoing or rewriting it.
Per-request rows of a task are renamed into place *before* its results part, so a finished task always has
both. Compaction streams the parts one at a time through a ``ParquetWriter``, so memory stays at one part.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from swarmplan.experiments.metrics import metrics_of

# The run metrics (experiments.metrics, also compare.METRICS) and the placement's own columns.
FLOAT_METRICS = metrics_of(float) + ("bound_ms_per_token",)
INT_METRICS = metrics_of(int) + ("R", "c")
BOOL_METRICS = ("overloaded",)
PART_RE = re.compile(r"^c(\d{6})-r(\d{4})\.parquet$")
RESULTS, REQUESTS, MANIFEST, SESSIONS = "results.parquet", "requests.parquet", "sweep.json", "sessions.jsonl"


def axis_type(values: Iterable[Any]) -> pa.DataType:
    """Column type of a swept key: bool, int64, float64, or string (other values as JSON)."""
    vals = list(values)
    if all(isinstance(v, bool) for v in vals):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return pa.float64()
    return pa.string()


def axis_value(v: Any, typ: pa.DataType) -> Any:
    if pa.types.is_string(typ):
        return v if isinstance(v, str) else json.dumps(v)
    if pa.types.is_floating(typ):
        return float(v)
    return v


def results_schema(axis_types: dict[str, pa.DataType]) -> pa.Schema:
    fields = [pa.field("cell", pa.int64())]
    fields += [pa.field(k, t) for k, t in axis_types.items()]
    fields += [
        pa.field("run", pa.int64()),
        pa.field("seed", pa.int64()),
        pa.field("method", pa.string()),
        pa.field("requests", pa.int64()),
    ]
    fields += [pa.field(m, pa.float64()) for m in FLOAT_METRICS]
    fields += [pa.field(m, pa.int64()) for m in INT_METRICS]
    fields += [pa.field(m, pa.bool_()) for m in BOOL_METRICS]
    fields.append(pa.field("extra_json", pa.string()))  # every other summary value (lists, new metrics)
    fields.append(pa.field("error", pa.string()))  # why the methods could not run this task (null when they ran)
    return pa.schema(fields)


def summary_rows(prefix: dict[str, Any], summaries: dict[str, dict]) -> list[dict]:
    """One row per method: the cell/run prefix, the fixed metric columns, everything else as JSON."""
    fixed = set(FLOAT_METRICS) | set(INT_METRICS) | set(BOOL_METRICS) | {"requests"}
    rows = []
    for method, s in summaries.items():
        row = {**prefix, "method": method, "requests": s.get("requests")}
        row.update({k: s.get(k) for k in FLOAT_METRICS + INT_METRICS + BOOL_METRICS})
        row["extra_json"] = json.dumps({k: v for k, v in s.items() if k not in fixed}, sort_keys=True)
        rows.append(row)
    return rows


def part_name(cell: int, run: int) -> str:
    return f"c{cell:06d}-r{run:04d}.parquet"


def finished_parts(parts_dir: Path) -> set[tuple[int, int]]:
    """(cell, run) of every complete part; leftover temporary files of a killed writer are removed."""
    done = set()
    if not parts_dir.is_dir():
        return done
    for p in parts_dir.iterdir():
        if p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
            continue
        m = PART_RE.match(p.name)
        if m:
            done.add((int(m.group(1)), int(m.group(2))))
    return done


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_part(
    parts_dir: Path, cell: int, run: int, rows: list[dict], schema: pa.Schema, request_rows: list[dict] | None
) -> None:
    """Write one task's rows; the results part goes last, as the task's durable done marker."""
    name = part_name(cell, run)
    if request_rows:
        _write_atomic(pa.Table.from_pylist(request_rows), parts_dir / ("requests-" + name))
    _write_atomic(pa.Table.from_pylist(rows, schema=schema), parts_dir / name)


def compact(parts_dir: Path, keys: list[tuple[int, int]], out: Path, schema: pa.Schema | None, prefix: str = "") -> int:
    """Stream the parts of ``keys`` (in that order) into one Parquet file; returns the rows written."""
    tmp = out.with_name(out.name + ".tmp")
    writer, n = None, 0
    try:
        for cell, run in keys:
            path = parts_dir / (prefix + part_name(cell, run))
            if not path.exists():
                continue
            table = pq.read_table(path)
            if schema is None:
                schema = table.schema
            if writer is None:
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(schema) if table.schema != schema else table)
            n += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(tmp, out)
    return n


def write_json_atomic(path: Path, doc: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
