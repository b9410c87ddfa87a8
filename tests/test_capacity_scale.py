"""The capacity bound's fast paths at scale (docs/capacity.md §2.2): the compiled time-grid DP equals its
NumPy reference, and pruning dominated servers keeps the pricing lower bound and the bound itself."""

import numpy as np
import pytest

from swarmplan.perf import capacity_bound as cb


def _random_grid_inputs(rng, J=12, L=9, U=40):
    ok = rng.random((J, L + 1)) < 0.5
    ok[:, 0] = False
    units = np.where(ok, rng.integers(0, U // 3, (J, L + 1)), -1).astype(np.int64)
    a = np.where(ok, np.round(rng.random((J, L + 1)), 2), np.inf)  # rounded: many ties
    return a, units, ok, L, U


@pytest.mark.parametrize("seed", range(5))
def test_compiled_grid_dp_equals_numpy_reference(seed):
    a, units, ok, L, U = _random_grid_inputs(np.random.default_rng(seed))
    c1 = np.zeros((a.shape[0], L + 1, U + 1), dtype=np.int16)
    c2 = np.zeros_like(c1)
    b1 = cb._grid_dp_numpy(a, units, ok, L, U, c1)
    b2 = cb._grid_dp(a, units, ok, L, U, c2)  # compiled when numba is on
    b3 = cb._grid_dp.py_func(a, units, ok, L, U, np.zeros_like(c1)) if hasattr(cb._grid_dp, "py_func") else b2
    assert np.array_equal(b1, b2) and np.array_equal(c1, c2) and np.array_equal(b1, b3)


def test_dominated_counts_earlier_cheaper_servers():
    # k = 2: a server is dropped when two earlier ones cost no more.
    got = cb._dominated(np.array([3.0, 1.0, 2.0, 2.0, 0.5, 3.0]), 2)
    assert got.tolist() == [False, False, False, True, False, True]


def _groups_swarm(rng, J, L):
    """Two server types; within a type time rows differ by a per-server constant (its RTT)."""
    kinds = rng.integers(0, 2, J)
    n = np.arange(L + 1)
    maxb = np.where(kinds == 0, L, 3)
    g = np.where((n >= 1) & (n <= maxb[:, None]), n / np.where(kinds == 0, 9.0, 2.0)[:, None], np.inf)
    rtt = rng.integers(0, 6, J).astype(float)
    hold = rtt[:, None] + np.where(kinds == 0, 1.0, 2.5)[:, None] * n
    return g, hold


@pytest.mark.parametrize("seed", range(4))
def test_pruning_keeps_the_pricing_lower_bound(seed):
    rng = np.random.default_rng(seed)
    L, J = 5, 30
    g, hold = _groups_swarm(rng, J, L)
    slo = cb.Slo("per_token", 1e9)
    pi = np.where(rng.random(J) < 0.5, 0.0, np.round(rng.random(J), 1))
    a = np.where(np.isfinite(g), pi[:, None] * np.where(np.isfinite(g), g, 0.0), np.inf)
    full = cb._TimeGrid(hold, g, L, slo, 0.0, 60, prune=False)
    pruned = cb._TimeGrid(hold, g, L, slo, 0.0, 60, prune=True)
    assert pruned.delta == full.delta
    cf, af = full.solve(a, pi)
    cp, ap = pruned.solve(a, pi)
    assert len(pruned.servers) < J  # something was pruned
    with np.errstate(invalid="ignore"):
        lf = np.min(np.where(np.isfinite(af), cf * af, np.inf))
        lp = np.min(np.where(np.isfinite(ap), cp * ap, np.inf))
    assert lp == pytest.approx(lf, abs=1e-12)
    assert pruned.tail_bound(a, 0.0) == pytest.approx(full.tail_bound(a, 0.0), abs=1e-12)
    # Every pruned path is a real chain: distinct servers covering L blocks.
    for cell in np.flatnonzero(np.isfinite(ap)):
        hops = pruned.path(int(cell))
        assert sum(n for _, n in hops) == L and len({j for j, _ in hops}) == len(hops)
