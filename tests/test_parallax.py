"""Parallax on swarmplan's model: the pipeline count maximises k²/s*(k), water-filling, the allocation."""

import itertools

import pytest
from conftest import explicit_scenario, perf_of

from swarmplan.placement.parallax import (
    choose_pipelines,
    min_stages,
    parallax_placement,
    water_fill,
)
from swarmplan.routing.parallax import ParallaxRouter
from swarmplan.routing.slots import SlotBook


def brute_min_stages(caps, L, k):
    """Fewest nodes forming k disjoint groups each with capacity ≥ L (exhaustive assignment)."""
    best = float("inf")
    for labels in itertools.product(range(k + 1), repeat=len(caps)):  # 0 = unused
        sums = [0] * k
        for c, g in zip(caps, labels):
            if g:
                sums[g - 1] += c
        if all(s >= L for s in sums):
            best = min(best, sum(1 for g in labels if g))
    return best


@pytest.mark.parametrize(
    "caps,L",
    [((40, 40, 20, 20, 10, 10), 70), ((32, 32, 3, 3, 3, 3, 3), 70), ((16, 16, 16, 8, 8, 8, 4), 32), ((9, 7, 5, 5, 3, 2), 12)],
)
def test_min_stages_matches_exhaustive_search(caps, L):
    for k in range(1, sum(caps) // L + 1):
        s, pipes = min_stages(list(caps), L, k)
        assert s == brute_min_stages(caps, L, k)
        if s < float("inf"):
            assert len(pipes) == k and sum(len(p) for p in pipes) == s
            assert all(sum(caps[i] for i in p) >= L for p in pipes)


def test_pipeline_count_maximises_k_squared_over_stages():
    # Parallax's own example: (40, 40, 20, 20, 10, 10), 70 layers → two pipelines (40, 20, 10), not 40 + 30.
    k, pipes, scores = choose_pipelines([40, 40, 20, 20, 10, 10], 70)
    assert scores == {1: pytest.approx(1 / 2), 2: pytest.approx(4 / 6)}
    assert k == 2 and sorted(len(p) for p in pipes) == [3, 3]
    # By hand: caps (16, 16, 16, 8, 8), L = 32: k = 1 needs 2 stages (1/2), k = 2 needs 16+16 and 16+8+8 (4/5).
    k, _, scores = choose_pipelines([16, 16, 16, 8, 8], 32)
    assert scores == {1: 0.5, 2: 0.8} and k == 2


def test_water_filling_by_hand():
    assert water_fill([40, 40], [3.0, 1.0], 40) == [30, 10]  # λ = 10: 3λ + λ = 40
    assert water_fill([32, 32, 3, 3], [312.0, 312.0, 20.0, 20.0], 70) == [32, 32, 3, 3]  # every cap binds
    assert water_fill([10, 10, 10], [1.0, 1.0, 1.0], 10) == [4, 3, 3]  # floors 3, 3, 3; the remainder to the first


def test_allocation_covers_the_model_and_routes_a_request():
    servers = [
        {"memory_gb": 6.0, "decode_ms_per_block": 5.0},
        {"memory_gb": 6.0, "decode_ms_per_block": 6.0},
        {"memory_gb": 3.0, "decode_ms_per_block": 9.0},
    ]
    pm = perf_of(explicit_scenario(servers, [10.0, 20.0, 5.0], n_blocks=5))
    pl = parallax_placement(pm)
    # capacities ⌊0.5·6⌋ = 3, 3, ⌊0.5·3⌋ = 1: k = 1 (two nodes: 3 + 3 ≥ 5), water-filled 3 + 2 (equal power,
    # remainder to the first); the 1-layer node joins the lightest layer.
    assert pl.info["pipelines"] == 1
    assert pl.coverage(pm.L).min() >= 1
    assert sorted(pl.n_blocks.tolist()) == [1, 2, 3]
    route = ParallaxRouter(pm, pl).route(SlotBook(pl.cache_slots), 0.0, 0, 10, 90)
    assert sum(route.processed) == pm.L and route.waits_ms == [0.0] * len(route.servers)
