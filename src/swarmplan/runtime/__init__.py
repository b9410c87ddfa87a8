"""Links to real swarms: exports of a placement to PETALS (docs/model.md §15)."""
