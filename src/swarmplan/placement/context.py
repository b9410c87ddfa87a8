"""What every placement method of one run shares (docs/model.md §10): the swarm, a seeded generator, the
arrival rate, the target R, and the draws and placements that several methods derive from (PETALS' random
join order, CG-BP), each made once per run so variants see the same draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from swarmplan.perf.concurrency import TargetR
from swarmplan.perf.model import PerfModel


@dataclass
class PlanContext:
    pm: PerfModel
    rng: np.random.Generator
    rate_per_s: float
    R: int | None = None  # given target concurrency; None: the paper's rule (docs/model.md §6)
    _placements: dict = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def join_order(self) -> list[int]:
        """PETALS' join order, shared by Petals, Opt Num and Opt RR (BPRR §8.4): the scenario's
        placement.petals_join_order when it states one, else a random permutation from the run's seed."""
        if self.pm.swarm.petals_join_order is not None:
            return list(self.pm.swarm.petals_join_order)
        return self.rng.permutation(self.pm.n_servers).tolist()

    @cached_property
    def target(self) -> tuple[int, TargetR | None]:
        """R as given, else the paper's rule with its inputs."""
        if self.R is not None:
            return self.R, None
        from swarmplan.placement.target import paper_target

        rule = paper_target(self.pm, self.rate_per_s)
        return rule.R, rule

    def placement(self, name: str, options=None):
        """The named placement with these options, computed once per context."""
        from swarmplan.placement.registry import PLACEMENTS, placement_method

        method = placement_method(name)
        opts = options if options is not None else method.options()
        key = (name, repr(opts))
        if key not in self._placements:
            self._placements[key] = PLACEMENTS[name].run(self, opts)
        return self._placements[key]
