"""Optimisation helpers (HiGHS through highspy); no swarmplan imports, so every layer may use them."""
