"""Progress for long commands: a bar with ETA on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def eta_text(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class LogProgress:
    """``progress(done, total)`` callback writing ``label: done/total (p %), elapsed, ETA`` lines.

    The ETA extrapolates from the tasks finished in this session (skipped ones took no time).
    """

    def __init__(self, label: str, every_s: float = 10.0, stream: TextIO | None = None, clock=time.monotonic):
        self.label, self.every_s, self.stream, self.clock = label, every_s, stream or sys.stderr, clock
        self.t0 = clock()
        self.first: int | None = None
        self.last_print = -float("inf")

    def line(self, done: int, total: int) -> str:
        elapsed = self.clock() - self.t0
        ran = done - (self.first or 0)
        text = f"{self.label}: {done}/{total} tasks ({100 * done / max(total, 1):.0f} %), {eta_text(elapsed)} elapsed"
        if 0 < ran and done < total:
            text += f", ETA {eta_text(elapsed / ran * (total - done))}"
        return text

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done
        now = self.clock()
        if done >= total or now - self.last_print >= self.every_s:
            self.last_print = now
            print(self.line(done, total), file=self.stream, flush=True)


class BarProgress:
    """A rich progress bar with ETA (for terminals); use as a context manager."""

    def __init__(self, label: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._label = label
        self._task = None

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        self._bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:  # start counting from what earlier sessions finished, so the ETA is about the rest
            self._task = self._bar.add_task(self._label, total=total, completed=done)
        self._bar.update(self._task, completed=done)


def progress_for(label: str, every_s: float = 10.0):
    """A bar when stderr is a terminal, else periodic log lines; both are context managers."""
    if sys.stderr.isatty():
        return BarProgress(label)
    return _Ctx(LogProgress(label, every_s))


class _Ctx:
    def __init__(self, cb):
        self.cb = cb

    def __enter__(self):
        return self.cb

    def __exit__(self, *exc):
        return None
