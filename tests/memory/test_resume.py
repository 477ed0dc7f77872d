"""Resume a failed run from checkpoints: the finished fan-out is never requested again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import files, rest
from tdm.effects.secrets import MappingSecrets
from tdm.errors import InputError
from tests.servers.fixtures import FakeApi

FLAKY = {"fail": False}


@tdm.transform
def total_by_group(df: pd.DataFrame) -> pd.DataFrame:
    if FLAKY["fail"]:
        raise RuntimeError("the warehouse said no")
    grouped = df.assign(group=df["id"] % 3).groupby("group", as_index=False)
    return grouped.agg(items=("id", "count"), names=("name", "max"))


def fan_out(api: FakeApi, out: str) -> tdm.Pipeline:
    listing = rest.get(
        f"{api.url}/items", records="data", paginate=rest.page_number(size=50, total="total")
    )
    details = listing >> rest.fetch_each(f"{api.url}/items/{{id}}", concurrency=8, label="details")
    written = details >> files.write(out.replace("totals", "details"), label="write_details")
    return written >> total_by_group() >> files.write(out, label="write_totals")


def fanout_requests(api: FakeApi) -> int:
    return sum(1 for r in api.log if r.path.startswith("/items/"))


def test_resume_after_a_late_failure_repeats_no_request_and_gives_the_same_output(
    fresh_fake_api: FakeApi, tmp_path: Path
) -> None:
    api = fresh_fake_api
    api.total = 60
    ckpt = f"file://{tmp_path}/ckpt"
    rt = tdm.Runtime(state=tdm.state.sqlite(tmp_path / "audit.db"), checkpoints=ckpt)
    out = str(tmp_path / "out" / "totals.parquet")
    p = fan_out(api, out)

    FLAKY["fail"] = True
    try:
        failed = tdm.run(p, runtime=rt, pipeline_id="fan")
    finally:
        FLAKY["fail"] = False
    assert not failed.ok and [n.name for n in failed.failed] == ["total_by_group"]
    assert fanout_requests(api) == 60
    details_written = (tmp_path / "out" / "details.parquet").stat().st_mtime_ns
    before = api.count

    resumed = tdm.run(p, runtime=rt, pipeline_id="fan", resume=failed)
    assert resumed.ok, resumed.error
    assert api.count == before  # not one request: listing and fan-out come from checkpoints
    assert resumed.restored == ["get_items", "details", "write_details"]
    assert [n.name for n in resumed.nodes.values() if not n.restored] == [
        "total_by_group",
        "write_totals",
    ]
    assert (tmp_path / "out" / "details.parquet").stat().st_mtime_ns == details_written
    assert resumed.resumed_from == failed.run_id

    # The same output as a run that never failed.
    whole = tdm.run(fan_out(api, str(tmp_path / "whole" / "totals.parquet")), pipeline_id="x")
    assert whole.ok
    pd.testing.assert_frame_equal(pd.read_parquet(out), whole.output)
    pd.testing.assert_frame_equal(resumed.output, whole.output)

    # The audit trail links the resumed run to its origin and says what was restored.
    record = rt.state.get(resumed.run_id)  # type: ignore[union-attr]
    assert record.resumed_from == failed.run_id
    assert [n.name for n in record.nodes if n.restored] == resumed.restored
    history = tdm.history(pipeline="fan", store=rt.state)
    assert history.set_index("run_id").loc[resumed.run_id, "resumed_from"] == failed.run_id
    # A successful run clears the pipeline's checkpoints (unless kept).
    assert not (tmp_path / "ckpt" / "fan").exists()


def test_a_changed_step_reruns_exactly_what_it_affects(
    fresh_fake_api: FakeApi, tmp_path: Path
) -> None:
    api = fresh_fake_api
    api.total = 10
    rt = tdm.Runtime(state=tdm.state.memory(), checkpoints=f"file://{tmp_path}/ck")
    out = str(tmp_path / "totals.parquet")
    FLAKY["fail"] = True
    try:
        failed = tdm.run(fan_out(api, out), runtime=rt, pipeline_id="fan")
    finally:
        FLAKY["fail"] = False
    assert not failed.ok
    before = api.count
    # The details now go elsewhere: that write and what follows it run, the fetches do not.
    changed = fan_out(api, out.replace(".parquet", "2.parquet"))
    resumed = tdm.run(changed, runtime=rt, pipeline_id="fan", resume=failed.run_id)
    assert resumed.ok and resumed.restored == ["get_items", "details"]
    assert api.count == before and (tmp_path / "details2.parquet").exists()


def test_resume_needs_checkpoints_of_that_run(tmp_path: Path) -> None:
    p = tdm.inputs.frame("x") >> total_by_group()
    x = {"x": pd.DataFrame({"id": [1], "name": ["a"]})}
    with pytest.raises(InputError, match="keeps none"):
        tdm.run(p, inputs=x, resume="r1", runtime=tdm.Runtime())
    rt = tdm.Runtime(checkpoints=f"file://{tmp_path}/ck")
    with pytest.raises(InputError, match="kept no checkpoints"):
        tdm.run(p, inputs=x, resume="nope", runtime=rt)


def test_checkpoints_on_s3(fresh_fake_api: FakeApi, fresh_s3_server: Any, tmp_path: Path) -> None:
    api, s3 = fresh_fake_api, fresh_s3_server
    api.total = 20
    s3.make_bucket("ckpt")
    secrets = MappingSecrets(
        {"S3": {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint_url}}
    )
    rt = tdm.Runtime(
        state=tdm.state.memory(),
        secrets=secrets,
        checkpoints=tdm.checkpoints.store("s3://ckpt/tdm", secret="S3"),
    )
    p = fan_out(api, str(tmp_path / "totals.parquet"))
    FLAKY["fail"] = True
    try:
        failed = tdm.run(p, runtime=rt, pipeline_id="fan-s3")
    finally:
        FLAKY["fail"] = False
    assert not failed.ok
    listed = s3.boto3_client().list_objects_v2(Bucket="ckpt", Prefix="tdm/fan-s3/objects/")
    assert len(listed.get("Contents", [])) == 3  # listing, fan-out, first write
    before = api.count
    resumed = tdm.run(p, runtime=rt, pipeline_id="fan-s3", resume=failed)
    assert resumed.ok and api.count == before
    assert resumed.restored == ["get_items", "details", "write_details"]
