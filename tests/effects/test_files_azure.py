"""File effects against a real local Azure Blob service (Azurite) through adlfs: no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import tdm
from tdm import files
from tdm.effects.dispatch import EffectEnv
from tdm.effects.secrets import MappingSecrets
from tdm.effects.storage import storage_options
from tdm.errors import SecretNotFoundError

from .files_helpers import FORMATS, assert_same, failed, ok, published, sample

CONTAINER = "curated"


@pytest.fixture
def az(azurite: Any) -> Iterator[Any]:
    azurite.reset()
    azurite.make_container(CONTAINER)
    yield azurite


@pytest.fixture
def rt(az: Any) -> tdm.Runtime:
    secrets = MappingSecrets({"Azure": {"connection_string": az.connection_string}})
    return tdm.Runtime(secrets=secrets)


def _blobs(az: Any) -> dict[str, bytes]:
    with az.blob_service_client() as client:
        container = client.get_container_client(CONTAINER)
        return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


def _write(uri: str, frame: pd.DataFrame, rt: tdm.Runtime, **kw: Any) -> tdm.RunReport:
    p = tdm.inputs.frame("x") >> files.write(uri, secret="Azure", **kw)
    return tdm.run(p, inputs={"x": frame}, runtime=rt)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_round_trips_on_azure(fmt: str, az: Any, rt: tdm.Runtime) -> None:
    uri = f"abfs://{CONTAINER}/rt/{FORMATS[fmt]}"
    ok(_write(uri, sample(), rt))
    assert list(_blobs(az)) == [f"rt/{FORMATS[fmt]}"]  # one blob, nothing temporary left
    df = ok(tdm.run(files.read(uri.replace("abfs://", "az://"), secret="Azure"), runtime=rt)).output
    assert_same(df, sample())


def test_glob_and_partitions_on_azure(az: Any, rt: tdm.Runtime) -> None:
    for i, name in enumerate(["b", "a"]):
        ok(_write(f"abfs://{CONTAINER}/raw/{name}.csv", sample(2, offset=10 * i), rt))
    read = files.read(f"abfs://{CONTAINER}/raw/*.csv", secret="Azure", path_column="src")
    df = ok(tdm.run(read, runtime=rt)).output
    assert df["id"].tolist() == [10, 11, 0, 1]
    assert df.attrs["source_path"] == [f"abfs://{CONTAINER}/raw/{n}.csv" for n in "ab"]

    uri = f"abfs://{CONTAINER}/devices"
    ok(_write(uri, sample(6), rt, format="parquet", partition_by=["platform"]))
    parts = published(_blobs(az), "devices")
    assert [n.split("/")[0] for n in parts] == ["platform=android", "platform=ios"]
    back = ok(tdm.run(files.read(uri, format="parquet", secret="Azure"), runtime=rt)).output
    assert_same(back.sort_values("id")[list(sample().columns)], sample(6))
    assert not [n for n in _blobs(az) if ".tdm-tmp-" in n]


def test_failed_partitioned_write_on_azure_keeps_previous_output(az: Any, rt: tdm.Runtime) -> None:
    uri = f"abfs://{CONTAINER}/parts"
    ok(_write(uri, sample(4), rt, format="parquet", partition_by=["platform"]))
    before = _blobs(az)
    bad = sample(4).assign(mixed=pd.Series([1, 2, "x", 4], dtype=object))
    assert f"cannot write {uri}" in failed(
        _write(uri, bad, rt, format="parquet", partition_by=["platform"])
    )
    assert _blobs(az) == before


def test_missing_blob_and_wrong_secret_fail_and_write_nothing(az: Any, rt: tdm.Runtime) -> None:
    uri = f"abfs://{CONTAINER}/nope.jsonl"
    out = files.write(f"abfs://{CONTAINER}/out.csv", secret="Azure")
    error = failed(tdm.run(files.read(uri, secret="Azure") >> out, runtime=rt))
    assert f"cannot read {uri}" in error and "no such file" in error
    error = failed(
        _write(
            f"abfs://{CONTAINER}/x.csv",
            sample(1),
            rt.evolve(
                secrets=MappingSecrets({"Azure-prod": {"connection_string": az.connection_string}})
            ),
        )
    )
    assert "cannot write abfs://curated/x.csv" in error and "'Azure' not found" in error
    assert az.account_key not in error
    assert _blobs(az) == {}


def _env(sections: dict[str, dict[str, str]]) -> EffectEnv:
    from datetime import UTC, datetime

    from tdm.core.context import RunContext

    runtime = tdm.Runtime(secrets=MappingSecrets(sections))
    return EffectEnv("n", RunContext(datetime.now(UTC)), runtime)


def test_azure_secret_shapes_map_to_adlfs_options() -> None:
    env = _env(
        {
            "key": {"account_name": "acct", "account_key": "k3y-value"},
            "sas": {"account_name": "acct", "sas_token": "?sv=2024&sig=abc"},
            "sp": {
                "account_name": "acct",
                "tenant_id": "t",
                "client_id": "c",
                "client_secret": "cs-value",
            },
            "half": {"account_name": "acct", "tenant_id": "t"},
            "none": {"container": "x"},
        }
    )
    assert storage_options("abfs", "key", env) == {
        "account_name": "acct",
        "account_key": "k3y-value",
    }
    assert storage_options("az", "sas", env)["sas_token"] == "?sv=2024&sig=abc"
    assert storage_options("abfs", "sp", env)["client_secret"] == "cs-value"
    with pytest.raises(SecretNotFoundError, match="missing: client_id, client_secret"):
        storage_options("abfs", "half", env)
    with pytest.raises(SecretNotFoundError, match="does not use"):
        storage_options("abfs", "none", env)


def test_s3_secret_shapes_map_to_s3fs_options() -> None:
    env = _env(
        {
            "full": {
                "key": "AK",
                "secret": "SK-value",
                "token": "T",
                "region": "eu-west-1",
                "endpoint_url": "http://127.0.0.1:9",
            },
            "legacy": {"access_key_id": "AK", "secret_access_key_id": "SK-value"},
            "half": {"key": "AK"},
        }
    )
    assert storage_options("s3", "full", env) == {
        "key": "AK",
        "secret": "SK-value",
        "token": "T",
        "client_kwargs": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"},
    }
    assert storage_options("s3", "legacy", env) == {"key": "AK", "secret": "SK-value"}
    with pytest.raises(SecretNotFoundError, match="both 'key' and 'secret'"):
        storage_options("s3", "half", env)
    assert storage_options("s3", None, env) == {}  # the default AWS credential chain
