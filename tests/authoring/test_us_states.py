"""standardize_us_state: user aliases, ISO 3166-2 codes, unknown values counted."""

from __future__ import annotations

import pandas as pd

from tdm.transforms import standardize_us_state


def test_iso_style_codes_and_user_aliases() -> None:
    df = pd.DataFrame({"state": ["US-TX", "us-ca", "USA-NY", "Lone Star", "Tex"]})
    out = standardize_us_state(aliases={"lone star": "Texas"})(df).unwrap()
    assert out["state"].tolist() == ["TX", "CA", "NY", "TX", "TX"]


def test_unknown_values_are_reported_with_counts() -> None:
    df = pd.DataFrame({"state": ["Gondor", "Mordor", "Gondor", "TX"]})
    failure = standardize_us_state(unknown="fail")(df).failure()
    assert "'Gondor' (2 rows), 'Mordor' (1 row)" in failure.message
    assert "aliases=" in failure.message
    kept = standardize_us_state()(df).unwrap()
    assert kept.attrs["unknown_us_states"] == {"Gondor": 2, "Mordor": 1}
    assert kept["state"].tolist() == ["Gondor", "Mordor", "Gondor", "TX"]


def test_an_alias_to_something_that_is_not_a_state_fails_clearly() -> None:
    df = pd.DataFrame({"state": ["x"]})
    failure = standardize_us_state(aliases={"x": "Narnia"})(df).failure()
    assert "aliases['x'] = 'Narnia' is not a US state" in failure.message
