"""swarmplan.experiments layer (see docs/architecture.md)."""
