"""Client/server split planning (SplitLLM-style): how much of the model each client device runs itself
(docs/split.md). Sits beside experiments: imports perf, placement, routing, sim and methods, never cli."""
