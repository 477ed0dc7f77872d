"""flatten_json, explode, pivot, unpivot."""

from __future__ import annotations

import pandas as pd

from tdm.transforms import explode, flatten_json, flatten_record, pivot, unpivot


def test_flatten_record_deep_lists_and_empties() -> None:
    record = {"a": {"b": {"c": 1}}, "l": [{"x": 1}, {"x": 2}], "e": {}, "n": None}
    assert flatten_record(record) == {"a_b_c": 1, "l_0_x": 1, "l_1_x": 2, "e": None, "n": None}
    assert flatten_record({"l": [1, 2]}, lists=False) == {"l": [1, 2]}
    assert flatten_record({"a": {"b": 1}}, sep=".") == {"a.b": 1}


def test_flatten_record_is_iterative() -> None:
    deep: dict[str, object] = {"v": 1}
    for _ in range(5000):
        deep = {"n": deep}
    flat = flatten_record(deep)
    assert list(flat.values()) == [1]


def test_flatten_json_single_dict_row_becomes_one_flat_row() -> None:
    # the original FlattenJSONToTable failed on a single dict
    df = pd.DataFrame({"Total": [2], "Meta": [{"Page": 1, "Links": {"next": None}}]})
    out = flatten_json()(df).unwrap()
    assert out.to_dict("records") == [{"Total": 2, "Meta_Page": 1, "Meta_Links_next": None}]


def test_flatten_json_keeps_column_order_index_and_plain_columns() -> None:
    df = pd.DataFrame(
        {"id": [1, 2], "geo": [{"st": "TX"}, None], "tags": [["a", "b"], []], "z": [0, 0]},
        index=[10, 11],
    )
    out = flatten_json()(df).unwrap()
    assert out.columns.tolist() == ["id", "geo_st", "tags_0", "tags_1", "z"]
    assert out.index.tolist() == [10, 11]
    only_geo = flatten_json("geo", lists=False)(df).unwrap()
    assert only_geo.columns.tolist() == ["id", "geo_st", "tags", "z"]


def test_flatten_json_without_nested_columns_is_a_no_op_and_name_clash_fails() -> None:
    df = pd.DataFrame({"a": [1]})
    assert flatten_json()(df).unwrap() is df
    clash = pd.DataFrame({"a_b": [1], "a": [{"b": 2}]})
    assert "duplicate column" in flatten_json()(clash).failure().message


def test_explode_several_columns() -> None:
    df = pd.DataFrame({"d": ["x"], "a": [[1, 2]], "b": [["p", "q"]]})
    out = explode(["a", "b"])(df).unwrap()
    assert out.to_dict("list") == {"d": ["x", "x"], "a": [1, 2], "b": ["p", "q"]}
    assert "['zz']" in explode("zz")(df).failure().message


def test_pivot_and_duplicates() -> None:
    df = pd.DataFrame({"day": [1, 1, 1], "m": ["cpu", "cpu", "mem"], "v": [1, 2, 3]})
    err = pivot("day", "m", "v")(df).failure()
    assert "agg=" in err.message and "(1, 'cpu')" in err.message
    out = pivot("day", "m", "v", agg="sum")(df).unwrap()
    assert out.to_dict("records") == [{"day": 1, "cpu": 3, "mem": 3}]
    two = pivot("day", "m", ["v", "w"], agg="max")(df.assign(w=0)).unwrap()
    assert two.columns.tolist() == ["day", "v_cpu", "v_mem", "w_cpu", "w_mem"]


def test_unpivot_then_pivot_round_trips() -> None:
    wide = pd.DataFrame({"day": [1, 2], "cpu": [5, 6], "mem": [7, 8]})
    long = unpivot("day", ["cpu", "mem"], var_name="m", value_name="v")(wide).unwrap()
    assert len(long) == 4
    back = pivot("day", "m", "v")(long).unwrap()
    pd.testing.assert_frame_equal(back, wide, check_dtype=False)
