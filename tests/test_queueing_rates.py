"""Theorem-4 death rates (docs/model.md §14.4): the O(C + K) form equals the C × K sums it replaces."""

import numpy as np
import pytest

from swarmplan.perf.queueing import _death_rates, _death_rates_reference


def test_worked_example():
    mu, caps = np.array([2.0, 1.0]), np.array([1, 2])
    # fastest first: the μ=2 chain's one slot fills, then the μ=1 chain's two: 2, 2+1, 2+2
    assert _death_rates(mu, caps, True).tolist() == [2.0, 3.0, 4.0]
    # slowest first: the μ=1 chain's two slots fill first: 1, 2, then 2+2
    assert _death_rates(mu, caps, False).tolist() == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_reference_on_random_chains(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 40))
    mu = np.sort(rng.uniform(1e-4, 1e-2, k))[::-1]
    caps = rng.integers(0, 30, k)
    caps[0] += 1
    for fastest in (True, False):
        got, want = _death_rates(mu, caps, fastest), _death_rates_reference(mu, caps, fastest)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12)
