"""What else runs on this host while the swarm runs (docs/runtime.md §8.5).

The swarm's processes share the cores with every other process on the machine. A ``LoadSampler`` process
reads, every ``period_s``, each process's state and session from ``/proc/<pid>/stat`` (each thread's, for a
process with several) and counts the runnable threads (state R) per session, leaving out the swarm's own
session (the launcher, its fork server, the servers and the client all share it). Averaged over windows of
``window_s``, these counts are the other sessions' demands the processor-sharing model (sim.cpu_share)
water-fills the cores among. Linux shares CPU time among sessions first when autogroup is on
(``/proc/sys/kernel/sched_autogroup_enabled``); then the counts stay per session, otherwise every runnable
thread counts as its own entity.

What it does not see: load changes faster than the period, and the kernel's own threads (no session).
Reading ``/proc`` costs the sampler a few milliseconds of CPU per sample (a few % of a core at 10 samples/s),
in the swarm's own session; the model leaves it out.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import defaultdict

from swarmplan.sim.cpu_share import Background, nice_weight


def autogroup_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def host_cores() -> int:
    """Cores this process may run on (its affinity), the C of docs/runtime.md §8.3."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _stat_fields(path: str) -> list[bytes]:
    """The fields of a /proc stat file after "pid (comm) ": state, ppid, pgrp, session, …, num_threads (17th)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return raw[raw.rfind(b")") + 2 :].split()


def autogroup_nice(pid: int | str = "self") -> float:
    """The nice value of a process's autogroup (``/proc/<pid>/autogroup``: "/autogroup-N nice K"), which sets
    the weight its session's group gets from the fair scheduler (docs/runtime.md Eq. 8.6); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            return float(fh.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0.0


def runnable_by_session(own_session: int, nices: dict[int, float] | None = None) -> dict[int, int]:
    """Runnable threads per session (other than ``own_session``) right now, from /proc/<pid>/stat (and each
    thread's /proc/<pid>/task/<tid>/stat for a process with more than one thread). ``nices``, when given,
    gets each such session's autogroup nice (read from one of its runnable processes)."""
    counts: dict[int, int] = defaultdict(int)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(f"/proc/{name}/stat")
        if len(fields) < 18 or int(fields[3]) == own_session:
            continue
        if int(fields[17]) <= 1:
            running = fields[0] == b"R"
        else:
            try:
                tids = os.listdir(f"/proc/{name}/task")
            except OSError:
                continue
            running = sum(_stat_fields(f"/proc/{name}/task/{t}/stat")[:1] == [b"R"] for t in tids)
        if running:
            sess = int(fields[3])
            counts[sess] += int(running)
            if nices is not None and sess not in nices:
                nices[sess] = autogroup_nice(name)
    return counts


def _sample_loop(period_s: float, own: int, conn) -> None:
    """The sampler process: sample until the parent says stop, then send the samples and the sessions'
    autogroup nice values back."""
    nices: dict[int, float] = {}
    samples = [(time.monotonic(), dict(runnable_by_session(own, nices)))]
    conn.send("ready")
    while not conn.poll(period_s):
        samples.append((time.monotonic(), dict(runnable_by_session(own, nices))))
    conn.send((samples, nices))
    conn.close()


class LoadSampler:
    """Samples the other sessions' runnable threads in a separate small process (so reading /proc never holds
    the client's interpreter lock); ``background(t0)`` turns the samples into a ``Background`` with times in ms
    since the monotonic instant ``t0`` (CLOCK_MONOTONIC is system-wide, so the processes' clocks agree)."""

    def __init__(self, period_s: float = 0.1, window_s: float = 0.3, grouped: bool | None = None):
        self.period_s, self.window_s = period_s, window_s
        self.grouped = autogroup_enabled() if grouped is None else grouped
        self.own = os.getsid(0)
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.nices: dict[int, float] = {}  # other sessions' autogroup nice values (Eq. 8.6)
        self.own_nice = autogroup_nice()
        self.available = os.path.exists("/proc/self/stat")
        self._proc = self._conn = None

    def __enter__(self) -> "LoadSampler":
        if self.available:
            ctx = multiprocessing.get_context("spawn")
            self._conn, there = ctx.Pipe()
            self._proc = ctx.Process(target=_sample_loop, args=(self.period_s, self.own, there), daemon=True)
            self._proc.start()
            there.close()
            if not self._conn.poll(60.0) or self._conn.recv() != "ready":  # sampling before the run starts
                self.__exit__()
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        try:
            self._conn.send("stop")
            if self._conn.poll(10.0):
                self.samples, self.nices = self._conn.recv()
        except (OSError, EOFError):
            pass
        finally:
            self._conn.close()
            self._proc.join(5.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None

    def background(self, t0_monotonic: float) -> Background:
        """docs/runtime.md §8.5 — per window, each other session's mean runnable count and its scheduling weight
        (grouped), or their sum as one list of single-process entities' total (not grouped)."""
        if not self.samples:
            return Background()
        times, demands, weights = [], [], []
        start = self.samples[0][0]
        win: list[dict[int, int]] = []
        for t, counts in self.samples:
            if t - start >= self.window_s and win:
                times.append((start - t0_monotonic) * 1000.0)
                d, w = _mean_demands(win, self.grouped, self.nices)
                demands.append(d)
                weights.append(w)
                start, win = t, []
            win.append(counts)
        times.append((start - t0_monotonic) * 1000.0)
        d, w = _mean_demands(win, self.grouped, self.nices)
        demands.append(d)
        weights.append(w)
        own = nice_weight(self.own_nice)
        return Background(times, demands, weights if self.grouped else None, own)

    def mean_busy(self) -> float:
        """Other sessions' runnable processes, averaged over the samples (for the report)."""
        return sum(sum(c.values()) for _, c in self.samples) / len(self.samples) if self.samples else 0.0


def _mean_demands(win: list[dict[int, int]], grouped: bool, nices: dict[int, float]):
    """(demands, weights) of one window: per other session its mean runnable count and its weight (grouped),
    or one entity with the total (not grouped; weight unused)."""
    sessions = sorted({s for counts in win for s in counts})
    means = [sum(counts.get(s, 0) for counts in win) / len(win) for s in sessions]
    if grouped:
        kept = [(m, nice_weight(nices.get(s, 0.0))) for s, m in zip(sessions, means) if m > 0]
        return tuple(m for m, _ in kept), tuple(w for _, w in kept)
    total = sum(means)
    return ((total,) if total > 0 else ()), ()
