"""swarmplan.perf layer (see docs/architecture.md)."""
