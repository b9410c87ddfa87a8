"""swarmplan.scenario layer (see docs/architecture.md)."""
