"""``files.write(mode="upsert", key=[...])``: one file or a partitioned folder, local and S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import files
from tdm.effects.secrets import MappingSecrets

BUCKET = "tdm-upsert"


def upsert(uri: str, frame: pd.DataFrame, rt: tdm.Runtime, **kw: Any) -> tdm.RunReport:
    p = tdm.inputs.frame("x") >> files.write(uri, mode="upsert", key=["id"], **kw)
    return tdm.run(p, inputs={"x": frame}, runtime=rt)


def read(uri: str, rt: tdm.Runtime, **kw: Any) -> pd.DataFrame:
    report = tdm.run(files.read(uri, format="parquet", **kw), runtime=rt)
    assert report.ok, report.error
    frame = report.output
    frame = frame.assign(**{c: frame[c].astype(str) for c in ("region",) if c in frame})
    return frame.sort_values("id").reset_index(drop=True)


FIRST = pd.DataFrame(
    {"id": [1, 2, 3, 4], "region": ["eu", "eu", "us", "us"], "v": [10, 20, 30, 40]}
)
CHANGES = pd.DataFrame({"id": [2, 4, 5], "region": ["eu", "us", "us"], "v": [21, 41, 50]})
MERGED = pd.DataFrame(
    {"id": [1, 2, 3, 4, 5], "region": ["eu", "eu", "us", "us", "us"], "v": [10, 21, 30, 41, 50]}
)


def check(uri: str, rt: tdm.Runtime, partitioned: bool, secret: str | None = None) -> None:
    kw: dict[str, Any] = {"secret": secret}
    if partitioned:
        kw.update(format="parquet", partition_by=["region"])
    assert upsert(uri, FIRST, rt, **kw).ok
    pd.testing.assert_frame_equal(read(uri, rt, secret=secret)[list(FIRST.columns)], FIRST)
    assert upsert(uri, CHANGES, rt, **kw).ok
    pd.testing.assert_frame_equal(read(uri, rt, secret=secret)[list(MERGED.columns)], MERGED)
    assert upsert(uri, CHANGES, rt, **kw).ok  # idempotent: the same changes again
    pd.testing.assert_frame_equal(read(uri, rt, secret=secret)[list(MERGED.columns)], MERGED)


@pytest.mark.parametrize("partitioned", [False, True])
def test_upsert_replaces_and_adds_rows_locally(partitioned: bool, tmp_path: Path) -> None:
    uri = str(tmp_path / ("by_region" if partitioned else "t.parquet"))
    check(uri, tdm.Runtime(), partitioned)


@pytest.mark.parametrize("partitioned", [False, True])
def test_upsert_on_s3(partitioned: bool, fresh_s3_server: Any) -> None:
    fresh_s3_server.make_bucket(BUCKET)
    so = {"endpoint_url": fresh_s3_server.endpoint_url}
    rt = tdm.Runtime(
        secrets=MappingSecrets(
            {"S3": {"key": fresh_s3_server.key, "secret": fresh_s3_server.secret, **so}}
        )
    )
    uri = f"s3://{BUCKET}/" + ("by_region" if partitioned else "t.parquet")
    check(uri, rt, partitioned, secret="S3")


def test_a_failed_upsert_leaves_the_stored_data_as_it_was(tmp_path: Path) -> None:
    uri = str(tmp_path / "t.parquet")
    assert upsert(uri, FIRST, tdm.Runtime()).ok
    before = Path(uri).read_bytes()
    bad = tdm.run(
        tdm.inputs.frame("x") >> files.write(uri, mode="upsert", key=["missing"]),
        inputs={"x": CHANGES},
    )
    assert not bad.ok and "key column(s) ['missing']" in (bad.error or "")
    assert Path(uri).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # nothing half-written
