"""SLO-Pack's disjoint-chain design (docs/capacity.md §5.2): sessions by hand, the MILP against brute force
over every set of disjoint chains, and its placement against the capacity bound."""

import itertools

import numpy as np
import pytest
from conftest import explicit_scenario, perf_of
from scipy.optimize import linprog
from test_capacity_bound import best_rate_for_placement, fastest_per_token_ms, tiny

from swarmplan.perf.capacity_bound import Slo, capacity_upper_bound
from swarmplan.placement.disjoint_chains import (
    best_disjoint,
    chain_pool,
    design_placement,
    evaluate,
    hop_tables,
    sessions,
)


def every_chain(pm, tables, slo):
    """Every chain with distinct servers (as sets: a hop's time does not depend on its position)."""
    sess = sessions(pm)
    out = []
    for k in range(1, pm.n_servers + 1):
        for servers in itertools.combinations(range(pm.n_servers), k):
            for blocks in itertools.product(range(1, pm.L + 1), repeat=k):
                if sum(blocks) == pm.L and all(sess[j, n] > 0 for j, n in zip(servers, blocks)):
                    out.append(evaluate(pm, tables, slo, servers, blocks, sess))
    return out


def disjoint_sets(pool, start=0, used=frozenset()):
    """Every non-empty set of pairwise disjoint chains of ``pool`` (depth-first, skipping conflicts)."""
    for i in range(start, len(pool)):
        if used.isdisjoint(pool[i].servers):
            yield [pool[i]]
            for rest in disjoint_sets(pool, i + 1, used | set(pool[i].servers)):
                yield [pool[i], *rest]


def brute_disjoint(pool, slo) -> float:
    """max Λ over every set of pairwise disjoint chains, each set's rates by an LP (scipy)."""
    best = 0.0
    for combo in disjoint_sets(pool):
        n = len(combo)
        if slo.kind == "response":
            a_ub = [[-(c.slo_value - slo.quantile) for c in combo]]
        else:
            a_ub = [[c.slo_value - slo.limit_ms for c in combo]]
        if n == 1 and a_ub[0][0] > 0:
            continue  # a lone chain that breaks the SLO carries nothing
        res = linprog(-np.ones(n), A_ub=a_ub, b_ub=[0.0], bounds=[(0, c.rate_per_s) for c in combo], method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best


def test_sessions_by_hand():
    servers = [{"memory_gb": 3.0, "decode_ms_per_block": 5.0, "max_blocks": 2}, {"memory_gb": 3.0, "decode_ms_per_block": 5.0}]
    pm = perf_of(explicit_scenario(servers, [10.0, 10.0], n_blocks=4))
    s = sessions(pm)
    # slots ⌊(3 − n)/0.1⌋: n = 1 → 20 sessions of 1 block; n = 2 → 10 slots, 5 sessions; n = 3 over the clamp.
    assert s[0, 1] == 20 and s[0, 2] == 5 and s[0, 3] == 0 and s[0, 0] == 0


@pytest.mark.parametrize("seed", range(3))
def test_milp_equals_brute_force_over_disjoint_chains(seed):
    pm = tiny(np.random.default_rng(seed), 3, 4)
    d = pm.swarm.timing.initial_delay_ms
    fast = fastest_per_token_ms(pm, d)
    for slo in (Slo("per_token", 1.15 * fast), Slo("response", 1.3 * fast * pm.output_tokens, 0.9)):
        tables = hop_tables(pm, slo, d)
        pool = [c for c in every_chain(pm, tables, slo) if c.rate_per_s > 0]
        design = best_disjoint(pool, slo, pm.n_servers, max_nodes=10_000)
        brute = brute_disjoint(pool, slo)
        got = design.fluid_rate_per_s if design else 0.0
        assert got == pytest.approx(brute, rel=1e-6, abs=1e-9), (seed, slo)
        if design:
            servers = [j for c in design.chains for j in c.servers]
            assert len(servers) == len(set(servers))  # disjoint
            # The placement built from it realises its chains (its own fluid optimum, with every chain the
            # placement has, is at least the design's) and no placement beats the bound.
            pl = design_placement(pm, design)
            fluid = best_rate_for_placement(pm, list(pl.start), list(pl.n_blocks), slo, d)
            assert design.fluid_rate_per_s <= fluid * (1 + 1e-9)
            assert fluid <= capacity_upper_bound(pm, slo).rate_per_s * (1 + 1e-7)


@pytest.mark.parametrize("seed", range(3))
def test_pool_design_never_beats_brute_force(seed):
    """The design from the pool SLO-Pack builds (the bound's columns + splits over ≤ 3 servers) is a set of
    disjoint chains, so it can at best tie the brute-force optimum over every chain."""
    pm = tiny(np.random.default_rng(10 + seed), 4, 4)
    d = pm.swarm.timing.initial_delay_ms
    slo = Slo("per_token", 1.2 * fastest_per_token_ms(pm, d))
    tables = hop_tables(pm, slo, d)
    brute = brute_disjoint([c for c in every_chain(pm, tables, slo) if c.rate_per_s > 0], slo)
    design = best_disjoint(chain_pool(pm, slo, tables, capacity_upper_bound(pm, slo)), slo, pm.n_servers)
    got = design.fluid_rate_per_s if design else 0.0
    assert got <= brute * (1 + 1e-9)


def test_per_token_dispatch_keeps_the_chains_the_fluid_optimum_uses():
    """Fractional knapsack by hand: 100 sessions each, so rate ∝ 1/T ∝ 1/per-token. Against 550 ms the chains
    at 400 and 500 ms leave 150/400 + 50/500 = 0.475 of slack; 600, 650 and 700 use 50/600 + 100/650 +
    150/700 = 0.451; 900 takes the last 0.024 (partly used, kept); 1000 finds none and is dropped."""
    from swarmplan.routing.gca import Chain
    from swarmplan.routing.slopack import admissible_chains

    pm = tiny(np.random.default_rng(0), 3, 4)
    d = pm.swarm.timing.initial_delay_ms
    per_token = [900, 400, 650, 500, 1000, 600, 700]
    chains = [Chain((k,), (pm.L,), v * pm.output_tokens - d, 100) for k, v in enumerate(per_token)]
    kept = admissible_chains(pm, chains, Slo("per_token", 550.0))
    assert [c.servers[0] for c in kept] == [0, 1, 2, 3, 5, 6]  # GCA's order kept, the 1000 ms chain dropped
    assert admissible_chains(pm, chains, Slo("per_token", 300.0)) == chains  # none within: nothing to choose
    assert admissible_chains(pm, chains, Slo("ttft", 300.0)) == chains


@pytest.mark.parametrize("seed", range(3))
def test_placement_fluid_equals_the_brute_force_lp(seed):
    from swarmplan.experiments.capacity_fluid import placement_fluid_per_s
    from swarmplan.placement.types import Placement, slots_for

    rng = np.random.default_rng(20 + seed)
    pm = tiny(rng, 3, 4)
    d = pm.swarm.timing.initial_delay_ms
    slo = Slo("per_token", 1.3 * fastest_per_token_ms(pm, d))
    for _ in range(5):
        m = np.array([int(rng.integers(0, 1 + min(pm.L, pm.max_blocks[j]))) for j in range(pm.n_servers)])
        m = np.where(slots_for(pm, m, "proposed") >= m, m, 0)
        start = np.array([int(rng.integers(1, pm.L - k + 2)) if k else 0 for k in m])
        pl = Placement("x", start, m, slots_for(pm, m, "proposed"), "proposed")
        want = best_rate_for_placement(pm, list(start), list(m), slo, d)
        assert placement_fluid_per_s(pm, pl, slo, d) == pytest.approx(want, rel=1e-6, abs=1e-9)
