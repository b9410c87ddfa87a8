"""Server churn: the schedule of failures and returns a run replays (docs/model.md §16).

A schedule is plain data: ``(time_ms, server, up)`` events in time order, from the scenario's explicit
events and/or a seeded failure/repair process per server (exponential up and down times, the usual
alternating-renewal model of machine availability). An empty schedule changes nothing in a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmplan.errors import SwarmplanError
from swarmplan.scenario.models import ChurnSpec


@dataclass(frozen=True)
class ChurnEvent:
    time_ms: float
    server: int
    up: bool  # False: the server fails; True: it returns


@dataclass(frozen=True)
class ChurnSchedule:
    events: tuple[ChurnEvent, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.events)


def churn_schedule(
    spec: ChurnSpec | None, server_names: tuple[str, ...], horizon_ms: float, rng: np.random.Generator | None = None
) -> ChurnSchedule:
    """The events of ``spec`` for these servers. The failure process draws, per server in index order,
    alternating Exp(mtbf) up-times and Exp(mean downtime) down-times until the horizon."""
    if spec is None:
        return ChurnSchedule()
    events: list[ChurnEvent] = []
    for i, ev in enumerate(spec.events):
        if ev.server not in server_names:
            raise SwarmplanError(
                f"churn.events[{i}].server",
                f"unknown server {ev.server!r}",
                f"use one of {', '.join(server_names[:10])}{' …' if len(server_names) > 10 else ''}",
            )
        j = server_names.index(ev.server)
        events.append(ChurnEvent(ev.fail_s * 1000.0, j, False))
        if ev.return_s is not None:
            events.append(ChurnEvent(ev.return_s * 1000.0, j, True))
    if spec.process is not None:
        if rng is None:
            raise ValueError("a churn process needs a seeded generator")
        p = spec.process
        end = p.horizon_s * 1000.0 if p.horizon_s is not None else horizon_ms
        for j in range(len(server_names)):
            t = 0.0
            while True:
                t += rng.exponential(p.mtbf_s * 1000.0)
                if t >= end:
                    break
                events.append(ChurnEvent(t, j, False))
                t += rng.exponential(p.mean_downtime_s * 1000.0)
                events.append(ChurnEvent(t, j, True))
    _check_alternation(events, server_names)
    events.sort(key=lambda e: (e.time_ms, e.up, e.server))
    return ChurnSchedule(tuple(events))


def _check_alternation(events: list[ChurnEvent], names: tuple[str, ...]) -> None:
    """A server must be up to fail and down to return: overlapping outages of one server are an input error."""
    by_server: dict[int, list[ChurnEvent]] = {}
    for e in events:
        by_server.setdefault(e.server, []).append(e)
    for j, evs in by_server.items():
        up = True
        for e in sorted(evs, key=lambda e: (e.time_ms, e.up)):
            if e.up == up:
                raise SwarmplanError(
                    "churn.events",
                    f"server {names[j]} {'returns while up' if up else 'fails while down'} "
                    f"at {e.time_ms / 1000:g} s (outages overlap)",
                    "make each server's outages disjoint",
                )
            up = e.up
