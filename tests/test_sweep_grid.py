"""Sweep grids: axis syntax (lists, ranges, YAML lists, linked keys), the product of cells, bad input."""

import json

import pytest

from swarmplan.errors import SwarmplanError
from swarmplan.experiments.grid import Axis, cells, parse_axis


def test_ranges_include_stop_and_keep_decimal_steps():
    ax = parse_axis("workload.rate_per_s=0.1:2.0:0.1")
    vals = [v[0] for v in ax.values]
    assert len(vals) == 20 and vals[0] == 0.1 and vals[2] == 0.3 and vals[-1] == 2.0  # not 0.30000000000000004
    assert [v[0] for v in parse_axis("servers.count=10:40:10").values] == [10, 20, 30, 40]
    assert all(isinstance(v[0], int) for v in parse_axis("servers.count=10:40:10").values)
    assert [v[0] for v in parse_axis("x=0:1:0.4").values] == [0.0, 0.4, 0.8]  # stop not on a step: left out


def test_lists_are_read_as_yaml_scalars_and_linked_keys_zip():
    assert parse_axis("servers.count=9,19,40").values == ((9,), (19,), (40,))
    assert parse_axis("network.topology=Abvt, GtsCe").values == (("Abvt",), ("GtsCe",))
    ax = parse_axis("network.topology+servers.count=Abvt/9,GtsCe/60")
    assert ax.keys == ("network.topology", "servers.count") and ax.values == (("Abvt", 9), ("GtsCe", 60))
    ax = parse_axis('servers.gpu_fractions=[{a: 0.1, b: 0.9}, {a: 0.5, b: 0.5}]')
    assert ax.values == (({"a": 0.1, "b": 0.9},), ({"a": 0.5, "b": 0.5},))


def test_cells_are_the_row_major_product_with_json_overrides():
    grid = cells([parse_axis("a=1,2"), parse_axis("b+c=x/0.5,y/1.5,z/2.5")])
    assert len(grid) == 6 and [c.index for c in grid] == list(range(6))
    assert grid[0].values == {"a": 1, "b": "x", "c": 0.5} and grid[4].values == {"a": 2, "b": "y", "c": 1.5}
    assert grid[4].overrides() == ["a=2", 'b="y"', "c=1.5"]
    assert [json.loads(o.split("=", 1)[1]) for o in grid[5].overrides()] == [2, "z", 2.5]
    assert len(cells([])) == 1 and cells([])[0].values == {}


@pytest.mark.parametrize("text", ["noequals", "x=", "x=1:0:1", "x=0:1:-1", "x=a:b:c", "a+b=1/2,3", "x=1,1", "x=[]"])
def test_bad_axes_name_the_option(text):
    with pytest.raises(SwarmplanError) as exc:
        parse_axis(text)
    assert exc.value.field == "--grid" and exc.value.fix


def test_a_key_on_two_axes_is_refused():
    with pytest.raises(SwarmplanError, match="two axes"):
        cells([Axis(("a",), ((1,),)), Axis(("b", "a"), ((1, 2),))])
