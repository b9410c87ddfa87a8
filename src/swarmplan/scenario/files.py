"""Read a user's input file safely: one place that checks it exists, is text (UTF-8, no NUL bytes) and, for
CSVs, has the columns asked for and no short rows, before any number in it is used.

Every problem becomes a SwarmplanError naming the scenario field the path came from, so a binary file, a
spreadsheet saved as UTF-16 or a truncated CSV never reaches a parser's traceback.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from swarmplan.errors import SwarmplanError


def read_text(path: Path | str, field: str, kind: str = "text file") -> str:
    """The file's text; ``kind`` ("YAML file", "CSV", …) words the fix."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise SwarmplanError(field, f"{path} is a folder, not a {kind}", f"give the path of a {kind}")
    except OSError as exc:
        raise SwarmplanError(field, f"cannot read {path}: {exc.strerror or exc}", "check the path and its permissions")
    if b"\x00" in raw[:65536]:
        raise SwarmplanError(field, f"{path} is a binary file, not a {kind}", f"give a UTF-8 {kind}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SwarmplanError(
            field, f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded)", f"save it as a UTF-8 {kind}"
        )


def read_csv_rows(path: Path | str, field: str, need: set[str], fix: str) -> list[dict[str, str]]:
    """Rows of a CSV with a header naming at least ``need``; every row has every column (no short rows)."""
    text = read_text(path, field, "CSV")
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SwarmplanError(field, f"{path} is not a readable CSV ({exc})", fix)
    if not rows or not need <= set(rows[0]):
        missing = sorted(need - set(rows[0])) if rows else sorted(need)
        raise SwarmplanError(field, f"{path} has no rows or lacks the column(s) {', '.join(missing)}", fix)
    for k, row in enumerate(rows, start=2):
        if None in row.values() or None in row:
            raise SwarmplanError(
                field,
                f"{path}:{k}: the row has {'more' if None in row else 'fewer'} fields than the header",
                "give every row one value per column",
            )
    return rows


def finite_number(text: str, field: str, where: str, what: str) -> float:
    """``text`` as a finite float; NaN and ±inf are named as such."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SwarmplanError(field, f"{where}: {what} {text!r} is not a number", "fix that value")
    if not math.isfinite(value):
        raise SwarmplanError(field, f"{where}: {what} is {text.strip()} (not finite)", "give a finite number")
    return value
