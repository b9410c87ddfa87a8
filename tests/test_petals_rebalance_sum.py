"""PETALS re-chooses a rebalancing server's blocks from a fresh sum of the others' throughputs (docs/model.md §4.4)."""

import numpy as np

from swarmplan.optim.highs import Milp
from swarmplan.placement.petals import _totals, choose_best_blocks, rechoose_blocks


def test_fresh_sum_keeps_a_server_that_a_running_total_would_move():
    # s0 holds block 0 (0.1 tokens/s), s1 block 1 (0.1), s2 block 0 (0.2). s2 leaves and re-chooses.
    start0, m, thr = np.array([0, 1, 0]), np.array([1, 1, 1]), np.array([0.1, 0.1, 0.2])
    running = _totals(start0, m, thr, 2)
    running[0:1] -= thr[2]
    assert running.tolist() == [0.10000000000000003, 0.1]  # rounding: 0.1 + 0.2 − 0.2 ≠ 0.1
    assert choose_best_blocks(running, 1) == 1  # the running total would move s2 to block 1 …
    # … PETALS sees the other servers' spans: [0.1, 0.1], a tie, so the leftmost window, block 0: s2 stays.
    assert rechoose_blocks(2, start0, m, thr, 2) == 0


def test_highs_writes_nothing_to_stdout(capfd):
    lp = Milp()
    x = lp.add_vars(2, ub=3.0, cost=[-1.0, -2.0], integer=True)
    lp.add_row(x, [1.0, 1.0], ub=4.0)
    sol = lp.solve(verbose=True)
    assert sol.objective == -7.0  # x = (1, 3) by hand: the cheaper var at its bound, the rest on the other
    out, err = capfd.readouterr()
    assert out == "" and "HiGHS" in err
