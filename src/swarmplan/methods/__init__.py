"""swarmplan.methods layer (see docs/architecture.md)."""
