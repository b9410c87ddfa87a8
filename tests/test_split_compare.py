"""Split-aware methods in `compare` (docs/split.md §6.1, §9)."""

import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.compare import compare
from swarmplan.methods.registry import get_methods
from swarmplan.scenario.loader import load_scenario
from swarmplan.split.compare_methods import SPLIT_METRICS, resolve


def _compare(name, methods, requests=80):
    sc, base = load_scenario(name)
    return compare(sc, resolve(sc, methods, get_methods), 1, requests, 0, "fair", base_dir=base)


def test_split_methods_beside_the_others_on_one_server():
    res = _compare("split-edge", ["cg-bprr", "split-dp", "split-greedy"])
    runs = {m: res.per_run[m][0] for m in res.methods}
    for summary in runs.values():
        assert set(SPLIT_METRICS) <= set(summary)
    assert runs["split-dp"]["within_sla_fraction"] == 1.0
    # cg-bprr on one server runs every block there: the split's server work is smaller, its clients work.
    assert runs["split-dp"]["server_work_per_request_ms"] < runs["cg-bprr"]["server_work_per_request_ms"]
    assert runs["split-dp"]["server_work_per_request_ms"] <= runs["split-greedy"]["server_work_per_request_ms"] + 1e-9
    assert runs["cg-bprr"]["client_work_per_request_ms"] == 0 < runs["split-dp"]["client_work_per_request_ms"]
    assert "within_sla_fraction" in res.stats()["split-dp"]


def test_scenarios_without_split_are_unchanged():
    res = _compare("paper-abvt", ["petals"], requests=20)
    assert not set(SPLIT_METRICS) & set(res.per_run["petals"][0])


def test_split_methods_only_where_they_apply():
    edge, _ = load_scenario("split-edge")
    swarm, _ = load_scenario("split-swarm")
    plain, _ = load_scenario("paper-abvt")
    assert [m.name for m in resolve(swarm, None, get_methods)][-1] == "split+gbp-cr"
    assert [m.name for m in resolve(edge, None, get_methods)][-2:] == ["split-dp", "split-greedy"]
    for sc, name in ((swarm, "split-dp"), (edge, "split+gbp-cr"), (plain, "split-dp")):
        with pytest.raises(SwarmplanError, match="cannot run here"):
            resolve(sc, [name], get_methods)


def test_cli_compare_shows_split_metrics(run_cli):
    code, out, _ = run_cli("compare", "split-edge", "--methods", "cg-bprr,split-dp", "--runs", "1", "--requests", "40")
    assert code == 0 and "split: within SLA" in out and "split-dp" in out
