"""The capacity upper bound (docs/capacity.md §2) against brute force over every placement of tiny swarms."""

import itertools

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of
from scipy.optimize import linprog

from swarmplan.errors import SwarmplanError
from swarmplan.perf.capacity_bound import Slo, capacity_upper_bound


def chains_of(start, m, L):
    """Every chain of a placement by depth-first search (independent of perf.chains)."""
    end = [s + k - 1 if k else -1 for s, k in zip(start, m)]
    out = []

    def walk(boundary, chain, blocks):
        if boundary == L:
            out.append((tuple(chain), tuple(blocks)))
            return
        for j in range(len(start)):
            if m[j] and j not in chain and start[j] <= boundary + 1 <= end[j]:
                walk(end[j], chain + [j], blocks + [end[j] - boundary])

    walk(0, [], [])
    return out


def best_rate_for_placement(pm, start, m, slo: Slo, delay_ms: float) -> float:
    """The fluid optimum of one placement: max Λ over chain rates with Little's law on the real slots
    ⌊(M − s_m m)/s_c⌋ and the SLO row, by scipy's LP (req/s)."""
    chains = chains_of(start, m, pm.L)
    if not chains:
        return 0.0
    slots = np.floor((pm.memory_gb - pm.block_gb * np.asarray(m)) / pm.kv_gb + 1e-9)
    T = np.array([sum(pm.hop_service(0, j, k) for j, k in zip(ch, ks)) for ch, ks in chains])
    n = len(chains)
    A_ub, b_ub = [], []
    for j in range(pm.n_servers):
        row = np.zeros(n + 1)
        for p, (ch, ks) in enumerate(chains):
            if j in ch:
                row[p] = T[p] * ks[ch.index(j)]
        if row.any():
            A_ub.append(row)
            b_ub.append(slots[j])
    if slo.kind == "per_token":
        A_ub.append(np.append((T + delay_ms) / pm.output_tokens - slo.limit_ms, 0.0))
        b_ub.append(0.0)
    else:  # response quantile: chains meeting the limit carry ≥ quantile of the rate
        meets = (T + delay_ms <= slo.limit_ms).astype(float)
        A_ub.append(np.append(-meets, slo.quantile))
        b_ub.append(0.0)
    A_eq = [np.append(np.ones(n), -1.0)]
    res = linprog(
        np.append(np.zeros(n), -1.0),
        A_ub=np.array(A_ub),
        b_ub=b_ub,
        A_eq=np.array(A_eq),
        b_eq=[0.0],
        bounds=[(0, None)] * (n + 1),
        method="highs",
    )
    assert res.status == 0
    return -res.fun * 1000.0


def brute_force(pm, slo, delay_ms) -> float:
    options = []
    for j in range(pm.n_servers):
        most = int(min(pm.L, pm.max_blocks[j], np.floor(pm.memory_gb[j] / pm.block_gb + 1e-9)))
        options.append([(0, 0)] + [(a, k) for k in range(1, most + 1) for a in range(1, pm.L - k + 2)])
    best = 0.0
    for combo in itertools.product(*options):
        start, m = [a for a, _ in combo], [k for _, k in combo]
        best = max(best, best_rate_for_placement(pm, start, m, slo, delay_ms))
    return best


def tiny(rng, n, L):
    while True:
        servers = [
            {
                "memory_gb": float(rng.uniform(1.3, 4.6)),
                "decode_ms_per_block": float(rng.uniform(0.5, 30)),
                "prefill_ms_per_token_per_block": 0.0,
                "prefill_ms_per_block": float(rng.uniform(1, 40)),
                **({"max_blocks": int(rng.integers(1, L + 1))} if rng.random() < 0.3 else {}),
            }
            for _ in range(n)
        ]
        rtts = [float(rng.uniform(0, 60)) for _ in range(n)]
        try:
            return perf_of(explicit_scenario(servers, rtts, n_blocks=L))
        except SwarmplanError:
            continue


def fastest_per_token_ms(pm, delay):
    best = np.inf
    for k in range(1, pm.n_servers + 1):
        for servers in itertools.permutations(range(pm.n_servers), k):
            for blocks in itertools.product(range(1, pm.L + 1), repeat=k):
                if sum(blocks) != pm.L:
                    continue
                ok = all(
                    b <= min(pm.max_blocks[j], (pm.memory_gb[j] - pm.kv_gb * b) / pm.block_gb) for j, b in zip(servers, blocks)
                )
                if ok:
                    best = min(best, sum(pm.hop_service(0, j, b) for j, b in zip(servers, blocks)))
    return (best + delay) / pm.output_tokens


@pytest.mark.parametrize("seed", range(3))
def test_bound_is_at_least_the_best_placement(seed):
    rng = np.random.default_rng(seed)
    pm = tiny(rng, 3, 4)
    delay = pm.swarm.timing.initial_delay_ms
    fast = fastest_per_token_ms(pm, delay)
    for slo in (Slo("per_token", 1.15 * fast), Slo("response", 1.3 * fast * pm.output_tokens, 0.9)):
        bound = capacity_upper_bound(pm, slo)
        brute = brute_force(pm, slo, delay)
        assert bound.rate_per_s >= brute * (1 - 1e-7), (seed, slo)
        assert bound.lp_rate_per_s <= bound.rate_per_s * (1 + 1e-9)
        # Column generation (pricing by the time-grid DP) proves a bound at least the exact LP's, and close to it.
        generated = capacity_upper_bound(pm, slo, enumerate_limit=0)
        assert bound.rate_per_s * (1 - 1e-7) <= generated.rate_per_s <= bound.rate_per_s * 1.05 + 1e-9


def test_bound_equals_brute_force_when_the_split_is_forced():
    """Two servers that can each hold only half the model: the only placement is the one chain s0+s1, whose
    memory constraint the relaxation reproduces exactly, so the bound is the true optimum."""
    servers = [
        {"memory_gb": 3.0, "decode_ms_per_block": 5.0, "max_blocks": 2},
        {"memory_gb": 2.5, "decode_ms_per_block": 9.0, "max_blocks": 2},
    ]
    pm = perf_of(explicit_scenario(servers, [10.0, 30.0], n_blocks=4))
    delay = pm.swarm.timing.initial_delay_ms
    fast = fastest_per_token_ms(pm, delay)
    for slo in (Slo("per_token", 1.5 * fast), Slo("response", 2 * fast * pm.output_tokens)):
        bound = capacity_upper_bound(pm, slo)
        brute = brute_force(pm, slo, delay)
        assert bound.certified
        assert bound.rate_per_s == pytest.approx(brute, rel=1e-6)
        # By hand: slots ⌊(3 − 2)/0.1⌋ = 10 and ⌊(2.5 − 2)/0.1⌋ = 5; each request holds 2 slots on both for T,
        # so Λ ≤ min(10, 5)/(2 T).
        T = pm.hop_service(0, 0, 2) + pm.hop_service(0, 1, 2)
        assert brute == pytest.approx(5 / (2 * T) * 1000, rel=1e-9)


def test_no_rate_meets_an_slo_below_the_fastest_chain():
    pm = tiny(np.random.default_rng(3), 3, 4)
    fast = fastest_per_token_ms(pm, pm.swarm.timing.initial_delay_ms)
    assert capacity_upper_bound(pm, Slo("per_token", 0.99 * fast)).rate_per_s == pytest.approx(0.0, abs=1e-9)


def _spread_lengths_case(seed: int, n: int):
    """A tiny 3-server swarm, n requests with spread (l_in, l_out), and a per-token SLO 1.3 × its fastest chain."""
    pm = tiny(np.random.default_rng(5), 3, 4)
    rng = np.random.default_rng(seed)
    l_in, l_out = rng.integers(5, 200, size=n), rng.integers(2, 300, size=n)
    delay = pm.swarm.timing.initial_delay_ms
    return pm, l_in, l_out, delay, Slo("per_token", 1.3 * fastest_per_token_ms(pm, delay))


def test_finer_length_classes_never_loosen_the_bound():
    """docs/capacity.md §2.3: boxes of 4 quantiles per axis refine those of 2, and every refined box's corner
    times are at least its parent's, so the LP (exact here: every chain enumerated) can only fall."""
    from swarmplan.perf.capacity_bound import length_classes

    pm, l_in, l_out, delay, slo = _spread_lengths_case(seed=6, n=400)
    coarse = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=2, moments=False), delay)
    fine = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=4, moments=False), delay)
    assert coarse.certified and fine.certified
    assert fine.rate_per_s <= coarse.rate_per_s * (1 + 1e-9)
    assert fine.rate_per_s < coarse.rate_per_s  # strictly tighter on a spread of lengths


def test_more_boxes_along_l_out_tighten_the_bound_and_stay_above_exact_lengths():
    """docs/capacity.md §2.3: 2 × 4 boxes (l_in × l_out) refine 2 × 2, so the exact LP can only fall; and every
    box's corner times are below its members', so it stays at or above the LP with one class per distinct
    (l_in, l_out) pair at its exact times (the tightest classes: length-aware routing with nothing relaxed)."""
    from swarmplan.perf.capacity_bound import LengthClass, length_classes

    pm, l_in, l_out, delay, slo = _spread_lengths_case(seed=7, n=60)
    coarse = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=2, moments=False), delay)
    fine = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=2, bins_out=4, moments=False), delay)
    pairs, counts = np.unique(np.stack([l_in, l_out], 1), axis=0, return_counts=True)
    exact = [LengthClass(0, c / len(l_in), int(i), int(o), int(o)) for (i, o), c in zip(pairs, counts)]
    tight = capacity_upper_bound(pm, slo, exact, delay)
    assert coarse.certified and fine.certified and tight.certified
    assert tight.rate_per_s <= fine.rate_per_s * (1 + 1e-9) <= coarse.rate_per_s * (1 + 1e-9) ** 2
    assert fine.rate_per_s < coarse.rate_per_s


@pytest.mark.parametrize("seed", range(2))
def test_a_pricing_budget_keeps_the_bound_valid(seed):
    """Stopping column generation early (docs/capacity.md §2.2, pricing budget) may loosen the bound, never
    tighten it below the full column generation's (itself ≥ every placement's rate)."""
    pm = tiny(np.random.default_rng(seed), 3, 4)
    fast = fastest_per_token_ms(pm, pm.swarm.timing.initial_delay_ms)
    slo = Slo("per_token", 1.15 * fast)
    full = capacity_upper_bound(pm, slo, enumerate_limit=0)
    early = capacity_upper_bound(pm, slo, enumerate_limit=0, pricing_budget=1)
    assert early.iterations == 1 <= full.iterations
    assert early.rate_per_s >= full.lp_rate_per_s * (1 - 1e-9)


def best_rate_routing_by_length(pm, start, m, slo: Slo, delay_ms: float, pairs, weights) -> float:
    """The fluid optimum of one placement when routing may depend on each request's exact (l_in, l_out):
    a rate per (length pair, chain), Little's law on the real slots with each pair's own service time, and
    the SLO over the mix, by scipy's LP (req/s). Independent of swarmplan's bound code."""
    chains = chains_of(start, m, pm.L)
    if not chains:
        return 0.0
    slots = np.floor((pm.memory_gb - pm.block_gb * np.asarray(m)) / pm.kv_gb + 1e-9)
    cols = [(r, p) for r in range(len(pairs)) for p in range(len(chains))]
    T = np.array([sum(pm.hop_service(0, j, k, pairs[r][0], pairs[r][1]) for j, k in zip(*chains[p])) for r, p in cols])
    n = len(cols)
    A_ub, b_ub = [], []
    for j in range(pm.n_servers):
        row = np.zeros(n + 1)
        for c, (r, p) in enumerate(cols):
            ch, ks = chains[p]
            if j in ch:
                row[c] = T[c] * ks[ch.index(j)]
        if row.any():
            A_ub.append(row)
            b_ub.append(slots[j])
    out = np.array([pairs[r][1] for r, _ in cols], dtype=float)
    if slo.kind == "per_token":
        A_ub.append(np.append((T + delay_ms) / out - slo.limit_ms, 0.0))
    else:
        A_ub.append(np.append(-(T + delay_ms <= slo.limit_ms).astype(float), slo.quantile))
    b_ub.append(0.0)
    A_eq = [np.append([1.0 if r == q else 0.0 for r, _ in cols], -weights[q]) for q in range(len(pairs))]
    res = linprog(
        np.append(np.zeros(n), -1.0),
        A_ub=np.array(A_ub),
        b_ub=b_ub,
        A_eq=np.array(A_eq),
        b_eq=np.zeros(len(pairs)),
        bounds=[(0, None)] * (n + 1),
        method="highs",
    )
    assert res.status == 0
    return -res.fun * 1000.0


@pytest.mark.parametrize("seed", range(2))
def test_moment_bound_is_at_least_every_placement_routing_by_exact_length(seed):
    """docs/capacity.md §2.6: with each box held to its members' mean lengths the bound stays at least the
    best fluid rate of every placement of a tiny swarm when routing sees each request's exact lengths (brute
    force, scipy), and it is below the corner-only bound of the same boxes."""
    from swarmplan.perf.capacity_bound import length_classes

    rng = np.random.default_rng(40 + seed)
    pm = tiny(rng, 3, 4)
    delay = pm.swarm.timing.initial_delay_ms
    pairs = [(int(rng.integers(5, 200)), int(rng.integers(2, 300))) for _ in range(5)]
    counts = rng.integers(1, 6, size=len(pairs))
    l_in = np.repeat([p[0] for p in pairs], counts)
    l_out = np.repeat([p[1] for p in pairs], counts)
    weights = counts / counts.sum()
    mean_fast = float(np.sum(weights * [fastest_per_token_ms(pm, delay) * pm.output_tokens / o for _, o in pairs]))
    slos = (Slo("per_token", 1.4 * mean_fast), Slo("response", 1.5 * fastest_per_token_ms(pm, delay) * max(l_out), 0.6))
    for slo in slos:
        moments = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=1), delay)
        corners = capacity_upper_bound(pm, slo, length_classes(pm, l_in, l_out, bins=1, moments=False), delay)
        options = []
        for j in range(pm.n_servers):
            most = int(min(pm.L, pm.max_blocks[j], np.floor(pm.memory_gb[j] / pm.block_gb + 1e-9)))
            options.append([(0, 0)] + [(a, k) for k in range(1, most + 1) for a in range(1, pm.L - k + 2)])
        brute = max(
            best_rate_routing_by_length(pm, [a for a, _ in c], [k for _, k in c], slo, delay, pairs, weights)
            for c in itertools.product(*options)
        )
        assert brute > 0, slo
        assert moments.certified and moments.rate_per_s >= brute * (1 - 1e-7), (slo, moments.rate_per_s, brute)
        assert moments.rate_per_s < corners.rate_per_s, slo


@pytest.mark.parametrize("kind", ["per_token", "response", "ttft"])
def test_moment_bound_by_column_generation_is_valid_and_close(kind):
    """The pricing of §2.6's generators (per-token: w·T plus the DP; quantile: meeting judged by the corner's
    time, priced through the corner's grid shifted and scaled, and a window of the generator's own grid)
    proves a bound at least the exact LP over every chain, and close to it."""
    from swarmplan.perf.capacity_bound import length_classes

    pm, l_in, l_out, delay, slo = _spread_lengths_case(seed=8, n=200)
    if kind == "response":
        slo = Slo("response", 1.2 * float(np.quantile(l_out, 0.7)) * slo.limit_ms, 0.7)
    elif kind == "ttft":
        slo = Slo("ttft", 3.0 * slo.limit_ms)
    classes = length_classes(pm, l_in, l_out, bins=2, bins_out=3)
    exact = capacity_upper_bound(pm, slo, classes, delay)
    generated = capacity_upper_bound(pm, slo, classes, delay, enumerate_limit=0)
    assert exact.certified and exact.rate_per_s > 0
    assert exact.rate_per_s * (1 - 1e-7) <= generated.rate_per_s <= exact.rate_per_s * 1.05


def test_reciprocal_hull_holds_every_output_length():
    """Every (v, 1/v) of a class's distinct l_out lies in the convex hull of _reciprocal_hull's points (a
    feasibility LP), the least value comes first, and at most 2·anchors − 1 points are used."""
    from swarmplan.perf.capacity_bound import HULL_ANCHORS, _reciprocal_hull

    rng = np.random.default_rng(3)
    for size in (1, 3, 4, 5, 30, 200):
        values = np.unique(rng.integers(1, 3000, size=size))
        pts = np.array(_reciprocal_hull(tuple(values.tolist())))
        assert pts[0, 0] == values[0] and len(pts) <= 2 * HULL_ANCHORS - 1
        for v in values:
            res = linprog(
                np.zeros(len(pts)),
                A_eq=np.vstack([pts.T, np.ones(len(pts))]),
                b_eq=[v, 1.0 / v, 1.0],
                bounds=[(0, None)] * len(pts),
                method="highs",
            )
            assert res.status == 0, (size, v)
