"""Incremental file sources: only files no earlier successful run read (local and S3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

import tdm
from tdm import files
from tdm.effects.secrets import MappingSecrets
from tests.memory.steps import fail_when


def pipeline(uri: str, out: str, secret: str | None = None) -> tdm.Pipeline:
    src = files.read(uri, secret=secret, incremental=True, label="landing")
    return src >> fail_when() >> files.write(out, mode="upsert", key=["id"], secret=secret)


def test_only_new_or_changed_files_are_read_and_failures_lose_none(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    pd.DataFrame({"id": [1, 2], "v": ["a", "b"]}).to_csv(landing / "a.csv", index=False)
    pd.DataFrame({"id": [3], "v": ["c"]}).to_csv(landing / "b.csv", index=False)
    rt = tdm.Runtime(state=tdm.state.sqlite(tmp_path / "audit.db"))
    out = str(tmp_path / "table.parquet")
    p = pipeline(str(landing / "*.csv"), out)

    first = tdm.run(p, runtime=rt, pipeline_id="landing")
    assert first.ok and first.nodes["landing"].rows_out == 3
    assert sorted(first.cursors["landing"]) == [str(landing / "a.csv"), str(landing / "b.csv")]
    nothing = tdm.run(p, runtime=rt, pipeline_id="landing")
    assert nothing.ok and nothing.nodes["landing"].rows_out == 0
    assert nothing.drift == []  # nothing read is no schema change

    pd.DataFrame({"id": [4], "v": ["d"]}).to_csv(landing / "c.csv", index=False)
    pd.DataFrame({"id": [1, 2], "v": ["A", "b"]}).to_csv(landing / "a.csv", index=False)
    stamp = os.stat(landing / "a.csv").st_mtime + 5  # a new version, even on a coarse clock
    os.utime(landing / "a.csv", (stamp, stamp))
    failed = tdm.run(p, runtime=rt, pipeline_id="landing", params={"fail": True})
    assert not failed.ok and failed.nodes["landing"].rows_out == 3
    retry = tdm.run(p, runtime=rt, pipeline_id="landing")  # the failure lost nothing
    assert retry.ok and retry.nodes["landing"].rows_out == 3 and retry.drift == []
    table = pd.read_parquet(out).sort_values("id")
    assert table.to_dict("list") == {"id": [1, 2, 3, 4], "v": ["A", "b", "c", "d"]}


def test_incremental_files_on_s3(fresh_s3_server: Any) -> None:
    s3 = fresh_s3_server
    s3.make_bucket("landing")
    client = s3.boto3_client()
    put = lambda key, frame: client.put_object(  # noqa: E731
        Bucket="landing", Key=key, Body=frame.to_parquet(index=False)
    )
    put("in/a.parquet", pd.DataFrame({"id": [1], "v": ["a"]}))
    rt = tdm.Runtime(
        state=tdm.state.memory(),
        secrets=MappingSecrets(
            {"S3": {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint_url}}
        ),
    )
    p = pipeline("s3://landing/in/*.parquet", "s3://landing/out/t.parquet", secret="S3")
    first = tdm.run(p, runtime=rt, pipeline_id="s3in")
    assert first.ok and first.nodes["landing"].rows_out == 1, first.error
    put("in/b.parquet", pd.DataFrame({"id": [2], "v": ["b"]}))
    put("in/a.parquet", pd.DataFrame({"id": [1], "v": ["A"]}))  # a new ETag
    second = tdm.run(p, runtime=rt, pipeline_id="s3in")
    assert second.ok and second.nodes["landing"].rows_out == 2
    third = tdm.run(p, runtime=rt, pipeline_id="s3in")
    assert third.ok and third.nodes["landing"].rows_out == 0
    out = tdm.run(files.read("s3://landing/out/t.parquet", secret="S3"), runtime=rt).output
    assert out.sort_values("id").to_dict("list") == {"id": [1, 2], "v": ["A", "b"]}
