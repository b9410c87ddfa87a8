"""Placement methods on hand-worked cases, plus invariants on random scenarios (hypothesis)."""

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from swarmplan.errors import SwarmplanError
from swarmplan.perf.chains import build_chain_graph, shortest_chain
from swarmplan.placement.cgbp import cg_bp
from swarmplan.placement.gsa import gsa
from swarmplan.placement.petals import choose_best_blocks, petals_placement, should_choose_other_blocks
from swarmplan.placement.target import paper_target

# --- PETALS block selection (docs/model.md §4.3) -------------------------------------------------


def test_lowest_window_reference_example():
    assert choose_best_blocks(np.array([0, 0, 5, 1, 1.0]), 2) == 0


def test_uniform_swarm_stacks_left_on_ties():
    assert choose_best_blocks(np.full(8, 3.0), 3) == 0


def test_second_smallest_value_breaks_a_tie_of_minima():
    # Windows (n = 2) sorted: [1,3] [1,2] [1,2] [1,3]: minima tie, second value picks s = 1 (leftmost of two).
    assert choose_best_blocks(np.array([3, 1, 2, 1, 3.0]), 2) == 1


def _gpu(mem, tau=1.0, fwd=None, net=1e9, **kw):
    spec = {"memory_gb": mem, "decode_ms_per_block": tau}
    if fwd is not None:
        spec.update(forward_rps=fwd, network_rps=net)
    spec.update(kw)
    return spec


def test_petals_join_sequence_hand_worked():
    # Throughputs: A = 200/((3+1)/2) = 100, B = 50, C = 15/((2+1)/2) = 10; L = 6.
    pm = perf_of(explicit_scenario([_gpu(50, fwd=200), _gpu(50, fwd=100), _gpu(50, fwd=15)], [1, 1, 1]))
    pl = petals_placement(pm, order=[0, 1, 2], n_blocks=np.array([3, 3, 2]))
    # A takes 1–3; B the empty 4–6; C ties between 4–5 and 5–6 (both [50, 50]) and goes left.
    assert pl.start.tolist() == [1, 4, 4]
    assert pl.info["throughput_tokens_per_s"] == pytest.approx([100, 50, 10])


def test_rebalancing_reference_example():
    # A[0,4) and B[0,4) at 100 tokens/s, C[4,8) at 10: A should move (quality 0.1), C must stay (sole holder).
    start0, m, thr = np.array([0, 0, 4]), np.array([4, 4, 4]), np.array([100.0, 100.0, 10.0])
    rng = np.random.default_rng(0)
    assert should_choose_other_blocks(0, start0, m, thr, 8, 0.75, rng)
    assert not should_choose_other_blocks(2, start0, m, thr, 8, 0.75, rng)
    assert not should_choose_other_blocks(0, start0, m, thr, 8, 0.0, rng)  # balance_quality 0 disables


def test_rebalancing_fixes_the_imbalanced_swarm():
    pm = perf_of(explicit_scenario([_gpu(50, fwd=250), _gpu(50, fwd=250), _gpu(50, fwd=25)], [1, 1, 1], n_blocks=8))
    pl = petals_placement(pm, order=[2, 0, 1], n_blocks=np.array([4, 4, 4]))
    # C joins first at 1–4, A takes 5–8, B then doubles up on 1–4 beside C (lowest minimum is C's 10).
    assert pl.start.tolist() == [5, 1, 1]
    moved = petals_placement(pm, order=[2, 0, 1], n_blocks=np.array([4, 4, 4]), rebalance=True)
    assert moved.info["min_block_throughput"] >= pl.info["min_block_throughput"]


# --- CG-BP (docs/model.md §5) --------------------------------------------------------------------


def _cgbp_case():
    # L = 6, s_m = 1 GB, s_c = 0.1 GB (1e6 B/token × 100 tokens), o = 100 ms, R = 2.
    return perf_of(explicit_scenario([_gpu(4.5, 1.0), _gpu(4.5, 2.0), _gpu(2.5, 1.0)], [10, 0, 20]))


def test_cgbp_hand_worked():
    pl = cg_bp(_cgbp_case(), 2)
    # m = ⌊M/(1 + 0.2)⌋ = 3, 3, 2; t = 113, 106, 122; t̃ = 37.7, 35.3, 61 → order s1, s0, s2.
    assert pl.n_blocks.tolist() == [3, 3, 2]
    assert pl.order == (1, 0, 2)
    # s1 takes 1–3 (all windows tie); s0 the heaviest window touching uncovered blocks, 4–6;
    # s2 then sees every block at capacity ≥ R and takes the leftmost lexicographic minimum, 1–2.
    assert pl.start.tolist() == [4, 1, 1]
    assert pl.info["K"] == 2
    assert pl.bound_ms_per_token == pytest.approx(106 + 113 - 1.0 * (3 + 3 - 6))
    assert pl.cache_slots.tolist() == [15, 15, 5]


def test_cgbp_infeasible_r_is_a_clear_error():
    with pytest.raises(SwarmplanError, match="R"):
        cg_bp(_cgbp_case(), 30)


def test_cgbp_paper_abvt_reference_values():
    """bprr.md §6: Abvt, 2 A100 + 7 MIG, λ = 0.5/s → R ≈ 35–37, m = 53/4, U ≈ 440–475 ms/token."""
    Rs, Us = [], []
    for seed in range(4):
        pm = perf_of("paper-abvt", seed)
        tr = paper_target(pm, 0.5)
        assert tr.R_max == 196
        pl = cg_bp(pm, tr.R)
        assert sorted(set(pl.n_blocks.tolist())) in ([4, 53], [4, 52])
        Rs.append(tr.R)
        Us.append(pl.bound_ms_per_token)
    assert 33 <= np.mean(Rs) <= 39
    assert 420 <= np.mean(Us) <= 500


# --- GSA (docs/model.md §7) ----------------------------------------------------------------------


def test_gsa_hand_worked():
    # L = 6, every server m = ⌊min M / s_m⌋ = 2 → 3 stages; c_j = ⌊(M − 2)/(0.1·2)⌋.
    pm = perf_of(explicit_scenario([_gpu(2.5, 1.0), _gpu(2.5, 1.0), _gpu(2.5, 3.0), _gpu(2.9, 1.0)], [0, 5, 0, 9]))
    pl = gsa(pm, R=2)
    # c = 2, 2, 2, 4; times = 102, 107, 106, 111 → order s0, s2, s1, s3 (t0 = 112, T = 224 per stage).
    # s0 → stage 1 (ties → first), s2 → stage 2, s1 → stage 3; s3 finds every stage at C ≥ R and joins
    # the first stage with the least capacity, stage 1.
    assert pl.start.tolist() == [1, 5, 3, 1]
    assert pl.n_blocks.tolist() == [2, 2, 2, 2]
    assert pl.info["stage_capacity"] == [6, 2, 2]


# --- invariants on random scenarios --------------------------------------------------------------


@st.composite
def random_swarm(draw):
    n = draw(st.integers(2, 7))
    L = draw(st.integers(2, 12))
    servers = [
        _gpu(
            draw(st.floats(1.2, 16.0)),
            draw(st.floats(0.5, 20.0)),
            fwd=draw(st.floats(100, 5000)),
            max_blocks=draw(st.one_of(st.none(), st.integers(1, 6))),
        )
        for _ in range(n)
    ]
    rtts = [draw(st.floats(0, 80)) for _ in range(n)]
    return explicit_scenario(servers, rtts, n_blocks=L, kv_bytes=2e5), draw(st.integers(1, 6)), draw(st.integers(0, 10_000))


def _assert_valid(pm, pl, memory_model):
    L = pm.L
    held = pl.n_blocks > 0
    assert ((pl.start[held] >= 1) & (pl.start[held] + pl.n_blocks[held] - 1 <= L)).all()
    assert (pl.n_blocks <= pm.max_blocks).all()
    assert (pl.coverage(L) >= 1).all(), "every block 1..L is held by some server"
    g = build_chain_graph(pl.start, pl.n_blocks, L)
    cost, chain, processed = shortest_chain(g, np.ones(g.n_edges))
    assert chain and sum(processed) == L, "a chain covers the blocks in order"
    if memory_model == "proposed":
        used = pm.block_gb * pl.n_blocks + pm.kv_gb * pl.cache_slots
    else:
        used = (pm.block_gb + pm.petals_cache_gb) * pl.n_blocks + pm.autograd_gb * held
    assert (used <= pm.memory_gb + 1e-9).all()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_swarm())
def test_cgbp_placements_are_valid(case):
    scenario, R, _ = case
    try:
        pm = perf_of(scenario)
        pl = cg_bp(pm, R)
    except SwarmplanError:
        assume(False)
    _assert_valid(pm, pl, "proposed")
    assert (pl.cache_slots >= R * pl.n_blocks).all(), "the conservative rule reserves R sessions on every block"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_swarm())
def test_petals_placements_are_valid_when_the_blocks_fit(case):
    scenario, _, seed = case
    try:
        pm = perf_of(scenario)
    except SwarmplanError:
        assume(False)
    pl = petals_placement(pm, rng=np.random.default_rng(seed))
    assume(pl.n_blocks.sum() >= pm.L)
    _assert_valid(pm, pl, "petals")
