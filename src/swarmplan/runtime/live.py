"""Live slot state (moved to ``swarmplan.sim.live_slots`` so the step-level prediction uses the same class;
docs/runtime.md §4, §8.2)."""

from swarmplan.sim.live_slots import LiveSlots

__all__ = ["LiveSlots"]
