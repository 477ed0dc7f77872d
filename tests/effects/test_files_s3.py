"""File effects against a real local S3 (moto in server mode) through s3fs: no mocks."""

from __future__ import annotations

import pandas as pd
import pytest

import tdm
from tdm import files
from tdm.effects.secrets import MappingSecrets

from .files_helpers import FORMATS, assert_same, failed, ok, published, sample

BUCKET = "tdm-files"


@pytest.fixture
def s3(fresh_s3_server):  # type: ignore[no-untyped-def]
    fresh_s3_server.make_bucket(BUCKET)
    return fresh_s3_server


@pytest.fixture
def rt(s3) -> tdm.Runtime:  # type: ignore[no-untyped-def]
    secrets = MappingSecrets(
        {
            "S3": {
                "aws_access_key_id": s3.key,  # the original tdm's / AWS's key names work
                "aws_secret_access_key": s3.secret,
                "endpoint_url": s3.endpoint_url,
            },
            "BadKeys": {
                "key": "AKIAWRONGWRONG",
                "secret": "wrong-secret-value",
                "endpoint_url": s3.endpoint_url,
            },
            "Typo": {"acces_key": "x"},
        }
    )
    return tdm.Runtime(secrets=secrets)


def _objects(s3) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    client = s3.boto3_client()
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _write(uri: str, frame: pd.DataFrame, rt: tdm.Runtime, **kw: object) -> tdm.RunReport:
    p = tdm.inputs.frame("x") >> files.write(uri, secret="S3", **kw)  # type: ignore[arg-type]
    return tdm.run(p, inputs={"x": frame}, runtime=rt)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_round_trips_on_s3(fmt: str, s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    uri = f"s3://{BUCKET}/rt/{FORMATS[fmt]}"
    ok(_write(uri, sample(), rt))
    assert list(_objects(s3)) == [f"rt/{FORMATS[fmt]}"]  # one object, nothing temporary left
    df = ok(tdm.run(files.read(uri, secret="S3"), runtime=rt)).output
    assert_same(df, sample())
    assert df.attrs["source_path"] == uri


def test_glob_partitions_and_append_on_s3(s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    for i, name in enumerate(["b", "a"]):
        ok(_write(f"s3://{BUCKET}/raw/{name}.parquet", sample(2, offset=10 * i), rt))
    df = ok(
        tdm.run(
            files.read(f"s3://{BUCKET}/raw/*.parquet", secret="S3", path_column="src"), runtime=rt
        )
    ).output
    assert df["id"].tolist() == [10, 11, 0, 1]
    assert df["src"].tolist()[0] == f"s3://{BUCKET}/raw/a.parquet"

    uri = f"s3://{BUCKET}/devices"
    ok(_write(uri, sample(6), rt, format="parquet", partition_by=["platform"]))
    parts = published(_objects(s3), "devices")
    assert [k.split("/")[0] for k in parts] == ["platform=android", "platform=ios"]
    back = ok(tdm.run(files.read(uri, format="parquet", secret="S3"), runtime=rt)).output
    assert_same(back.sort_values("id")[list(sample().columns)], sample(6))
    ok(
        _write(
            uri,
            sample(1, offset=50).assign(platform="web"),
            rt,
            format="parquet",
            partition_by=["platform"],
        )
    )
    parts = published(_objects(s3), "devices")
    assert len(parts) == 1 and parts[0].startswith("platform=web/")  # overwrite: no stale parts
    assert not [k for k in _objects(s3) if ".tdm-tmp-" in k]

    log = f"s3://{BUCKET}/log.csv"
    ok(_write(log, sample(2), rt, mode="append"))
    ok(_write(log, sample(2, offset=2), rt, mode="append"))
    assert_same(ok(tdm.run(files.read(log, secret="S3"), runtime=rt)).output, sample(4))


def test_failed_partitioned_write_on_s3_keeps_previous_output(s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    uri = f"s3://{BUCKET}/parts"
    ok(_write(uri, sample(4), rt, format="parquet", partition_by=["platform"]))
    before = _objects(s3)
    bad = sample(4).assign(mixed=pd.Series([1, 2, "x", 4], dtype=object))  # ios partition fails
    error = failed(_write(uri, bad, rt, format="parquet", partition_by=["platform"]))
    assert f"cannot write {uri}" in error
    assert _objects(s3) == before  # unchanged, and no staging objects left


def test_default_credential_chain_without_secret(s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # No secret named: s3fs/botocore find AWS_ACCESS_KEY_ID & co. in the environment.
    so = {"client_kwargs": {"endpoint_url": s3.endpoint_url}}
    p = tdm.inputs.frame("x") >> files.write(f"s3://{BUCKET}/env.parquet", storage_options=so)
    ok(tdm.run(p, inputs={"x": sample(2)}))
    assert "env.parquet" in _objects(s3)


def test_missing_object_and_missing_bucket_fail_clearly(s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    uri = f"s3://{BUCKET}/nope.parquet"
    report = tdm.run(
        files.read(uri, secret="S3") >> files.write(f"s3://{BUCKET}/out.csv", secret="S3"),
        runtime=rt,
    )
    error = failed(report)
    assert f"cannot read {uri}" in error and "no such file" in error
    assert _objects(s3) == {}  # nothing written
    error = failed(tdm.run(files.read("s3://no-such-bucket/x.csv", secret="S3"), runtime=rt))
    assert "cannot read s3://no-such-bucket/x.csv" in error


def test_wrong_secret_name_or_bad_credentials_write_nothing(s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    uri = f"s3://{BUCKET}/x.csv"
    p = tdm.inputs.frame("x") >> files.write(uri, secret="S3-prod")
    error = failed(tdm.run(p, inputs={"x": sample(2)}, runtime=rt))
    assert f"cannot write {uri}" in error and "'S3-prod' not found" in error
    assert _objects(s3) == {}
    error = failed(
        tdm.run(
            tdm.inputs.frame("x") >> files.write(uri, secret="Typo"),
            inputs={"x": sample(2)},
            runtime=rt,
        )
    )
    assert "'acces_key'" in error and "does not use" in error
    assert _objects(s3) == {}


def test_secret_values_never_appear(s3, rt: tdm.Runtime) -> None:  # type: ignore[no-untyped-def]
    p = files.read(f"s3://{BUCKET}/x.csv", secret="BadKeys")
    assert "wrong-secret-value" not in repr(p) + p.to_text()
    report = tdm.run(p, runtime=rt)
    text = str(report.error) + report.to_frame().to_string()
    assert "wrong-secret-value" not in text
