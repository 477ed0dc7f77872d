"""Shared data and checks for the file effect tests (every store runs the same round trips)."""

from __future__ import annotations

import json

import pandas as pd

import tdm
from tdm.interpreter.report import RunReport

FORMATS = {
    "csv": "data.csv",
    "csv.gz": "data.csv.gz",
    "parquet": "data.parquet",
    "json": "data.json",
    "jsonl": "data.jsonl",
    "jsonl.gz": "data.jsonl.gz",
}


def published(objects: dict[str, bytes], prefix: str) -> list[str]:
    """The files of the dataset at ``prefix`` (its manifest's list), without the version folder,
    e.g. ``["platform=android/part-....parquet", ...]``, given every object of the store."""
    manifest = json.loads(objects[f"{prefix}/_tdm_manifest.json"])
    return sorted(rel.split("/", 1)[1] for rel in manifest["files"])


def sample(n: int = 5, offset: int = 0) -> pd.DataFrame:
    """ints, floats (with a null), strings, a date, booleans."""
    ids = list(range(offset, offset + n))
    return pd.DataFrame(
        {
            "id": ids,
            "amount": [float(i) * 1.5 if i % 4 != 3 else None for i in ids],
            "platform": ["ios" if i % 2 else "android" for i in ids],
            "date": pd.to_datetime([f"2024-01-{1 + i % 28:02d}" for i in ids]),
            "ok": [i % 3 == 0 for i in ids],
        }
    )


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal values, ignoring storage dtypes (datetime unit, Arrow- vs numpy-backed)."""
    got = got.reset_index(drop=True)
    want = want.reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        g, w = got[col], want[col]
        if pd.api.types.is_datetime64_any_dtype(w):
            g = pd.to_datetime(g)
            assert (g.dt.tz_localize(None) if g.dt.tz else g).astype("datetime64[ns]").tolist() == (
                w.astype("datetime64[ns]").tolist()
            ), col
        else:
            assert [None if pd.isna(x) else x for x in g.tolist()] == [
                None if pd.isna(x) else x for x in w.tolist()
            ], col


def ok(report: RunReport) -> RunReport:
    assert report.status is tdm.Status.SUCCESS, report.error
    return report


def failed(report: RunReport) -> str:
    assert report.status is tdm.Status.FAILURE, "expected the run to fail"
    assert report.error
    return report.error
