"""The per-request DP against every cut, and the knapsack DP against every combination (docs/split.md §4–5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmplan.split.knapsack import (
    brute_force_min_work,
    budget_units,
    greedy,
    knapsack_min_work,
)
from swarmplan.split.model import LayerStack
from swarmplan.split.per_request import (
    best_split,
    brute_force_options,
    evaluate_split,
    split_options,
    work_frontier,
)

INF = float("inf")


def _uniform(L=3, out=3, cap=3, suffix=True, **sla):
    one, b = np.ones(L), np.ones(L + 1)
    return LayerStack(
        client_in=10 * one,
        client_tok=2 * one,
        server_in=1 * one,
        server_tok=0.5 * one,
        client_work=12 * one,
        server_work=3 * one,
        up_in=5 * b,
        up_tok=1 * b,
        down_in_all=6 * b,
        down_in_last=1 * b,
        down_tok=1 * b,
        output_tokens=out,
        max_client_blocks=cap,
        sla_response_ms=sla.get("resp", INF),
        sla_ttft_ms=sla.get("ttft", INF),
        sla_per_token_ms=sla.get("tok", INF),
        client_suffix=suffix,
    )


def test_evaluate_split_worked():
    s = _uniform()
    o = evaluate_split(s, 1, 0)  # client 1 block, server 2, LM head's hidden state back
    assert (o.ttft_ms, o.token_ms, o.response_ms) == (10 + 5 + 2 + 1, 2 + 1 + 1 + 1, 18 + 2 * 5)
    assert (o.client_work_ms, o.server_work_ms) == (12, 6)
    o = evaluate_split(s, 1, 1)  # the suffix needs every position's hidden state back
    assert (o.ttft_ms, o.token_ms, o.response_ms) == (10 + 5 + 1 + 6 + 10, 2 + 1 + 0.5 + 1 + 2, 32 + 2 * 6.5)
    o = evaluate_split(s, 3, 0)  # all on the client: no transfer
    assert (o.ttft_ms, o.token_ms, o.server_work_ms) == (30, 6, 0)
    o = evaluate_split(s, 0, 0)
    assert (o.ttft_ms, o.token_ms) == (5 + 3 + 1, 1 + 1.5 + 1)
    with pytest.raises(ValueError):
        evaluate_split(s, 1, 2)  # no server block between prefix and suffix


def test_dp_picks_most_offload_that_meets_the_sla():
    # Response with k client prefix blocks (no suffix): ttft = 9 + 9k, tok = 3.5 + 1.5k, resp = ttft + 2 tok.
    s = _uniform(resp=40.0)
    best = best_split(split_options(s))
    assert (best.prefix, best.suffix) == (2, 0) and best.response_ms == 9 + 18 + 2 * 6.5  # 40
    assert best_split(split_options(_uniform(resp=15.9))) is None  # all-on-server takes 16
    assert best_split(split_options(_uniform(resp=16.0))).client_blocks == 0
    assert best_split(split_options(_uniform(cap=1))).client_blocks == 1  # device memory caps it


def _stack(draw, L):
    pos = st.floats(0.0, 20.0, allow_nan=False)

    def arr(n):
        return np.array(draw(st.lists(pos, min_size=n, max_size=n)))

    def sla():
        return draw(st.one_of(st.just(INF), st.floats(1.0, 400.0)))

    return LayerStack(
        client_in=arr(L),
        client_tok=arr(L),
        server_in=arr(L),
        server_tok=arr(L),
        client_work=arr(L),
        server_work=arr(L),
        up_in=arr(L + 1),
        up_tok=arr(L + 1),
        down_in_all=arr(L + 1),
        down_in_last=arr(L + 1),
        down_tok=arr(L + 1),
        output_tokens=draw(st.integers(1, 6)),
        max_client_blocks=draw(st.integers(0, L)),
        sla_response_ms=sla(),
        sla_ttft_ms=sla(),
        sla_per_token_ms=sla(),
        client_suffix=draw(st.booleans()),
    )


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_dp_equals_brute_force_on_random_stacks(data):
    L = data.draw(st.integers(1, 6))
    s = _stack(data.draw, L)
    dp, bf = split_options(s), brute_force_options(s)
    assert (dp == []) == (bf == [])
    if not bf:
        return
    # The least server work, and the whole (client work, server work) frontier the knapsack uses.
    assert min(o.server_work_ms for o in dp) == pytest.approx(min(o.server_work_ms for o in bf), abs=1e-9)
    f_dp = [(round(o.client_work_ms, 6), round(o.server_work_ms, 6)) for o in work_frontier(dp)]
    f_bf = [(round(o.client_work_ms, 6), round(o.server_work_ms, 6)) for o in work_frontier(bf)]
    assert f_dp == f_bf
    for o in dp:  # every label the DP returns is that cut, evaluated in closed form
        e = evaluate_split(s, o.prefix, o.suffix)
        assert e.response_ms == pytest.approx(o.response_ms) and e.server_work_ms == pytest.approx(o.server_work_ms)
        assert o.client_blocks <= s.max_client_blocks


options_st = st.lists(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 30).map(float)), min_size=1, max_size=3), min_size=1, max_size=4
)


@settings(max_examples=100, deadline=None)
@given(options_st, st.integers(0, 10))
def test_knapsack_equals_brute_force_and_beats_greedy(options, capacity):
    picks, value = knapsack_min_work(options, capacity)
    assert value == pytest.approx(brute_force_min_work(options, capacity))
    used = sum(options[r][i][0] for r, i in enumerate(picks) if i is not None)
    assert used <= capacity
    penalty = 1.0 + sum(max(w for _, w in o) for o in options)
    assert value == pytest.approx(sum(options[r][i][1] if i is not None else penalty for r, i in enumerate(picks)))
    g_picks, g_value = greedy(options, capacity)
    assert g_value >= value - 1e-9
    assert sum(options[r][i][0] for r, i in enumerate(g_picks) if i is not None) <= capacity


def test_greedy_loses_when_an_early_request_wastes_the_budget():
    # Request 0 saves 1 ms of server work per unit, request 1 saves 10: greedy (arrival order) spends the
    # budget on request 0; the DP gives it to request 1.
    options = [[(0, 11.0), (5, 10.0)], [(0, 60.0), (5, 10.0)]]
    assert greedy(options, 5)[1] == 10.0 + 60.0
    assert knapsack_min_work(options, 5) == ([0, 1], 21.0)


def test_budget_units_round_up():
    assert budget_units(0.0, 2.0) == 0
    assert budget_units(4.0, 2.0) == 2
    assert budget_units(4.1, 2.0) == 3
