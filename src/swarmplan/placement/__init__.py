"""swarmplan.placement layer (see docs/architecture.md)."""
