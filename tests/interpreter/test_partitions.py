"""tdm.run_partitions on real files (local disk, S3 through moto) and a real Dask cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client

import tdm
from tdm import Hook, Runtime, Status, files, transform
from tdm.errors import DefinitionError, InputError
from tdm.executors import Dask, Threads


@transform
def add_total(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(total=df["a"] + df["b"])


@transform
def keep_big(df: pd.DataFrame, *, over: int) -> pd.DataFrame:
    return df[df["total"] > over]


def _dataset(root: Path, days: int = 4, *, broken: int | None = None) -> str:
    for day in range(1, days + 1):
        folder = root / "raw" / f"date=2026-01-0{day}"
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"a": [day, day * 10, day * 100], "b": [1, 2, 3]})
        if day == broken:
            frame = frame.rename(columns={"b": "c"})
        frame.to_csv(folder / "part.csv", index=False)
    return str(root / "raw" / "*" / "*.csv")


def _read_all(folder: Path) -> pd.DataFrame:
    parts = []
    for path in sorted(folder.rglob("*.parquet")):
        frame = pd.read_parquet(path)
        frame.insert(0, "file", str(path.relative_to(folder)))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def test_one_task_per_file_same_results_on_dask(tmp_path: Path, dask_client: Client) -> None:
    pattern = _dataset(tmp_path)
    pipeline = files.read(pattern) >> add_total() >> keep_big(over=15)
    outs = {}
    for label, executor in (("seq", "sequential"), ("dask", Dask(dask_client))):
        out = tmp_path / label
        report = tdm.run_partitions(
            pipeline,
            write=files.write(str(out) + "/", format="parquet"),
            executor=executor,  # type: ignore[arg-type]
        )
        assert report.ok, report.error
        assert list(report.nodes) == [f"date=2026-01-0{d}/part.csv" for d in range(1, 5)]
        assert [n.rows_out for n in report.nodes.values()] == [1, 2, 2, 2]
        assert report.outputs == {}  # written data is not brought back
        assert report.pipeline_id == pipeline.fingerprint()
        outs[label] = _read_all(out)
    pd.testing.assert_frame_equal(outs["seq"], outs["dask"])
    assert outs["seq"]["file"].tolist()[:3] == [
        "date=2026-01-01/part.parquet",
        "date=2026-01-02/part.parquet",
        "date=2026-01-02/part.parquet",
    ]
    # each partition got its folder's key=value as a column
    assert outs["seq"]["date"].tolist()[0] == "2026-01-01"


def test_a_failed_partition_fails_alone_and_reruns_alone(
    tmp_path: Path, dask_client: Client
) -> None:
    pattern = _dataset(tmp_path, broken=3)
    out = tmp_path / "out"
    write = files.write(str(out) + "/", format="parquet")
    pipeline = files.read(pattern) >> add_total()
    report = tdm.run_partitions(pipeline, write=write, executor=Dask(dask_client))
    assert report.status is Status.FAILURE
    assert [n.name for n in report.failed] == ["date=2026-01-03/part.csv"]
    error = report.failed[0].error
    assert error is not None and error.message.startswith("add_total: KeyError")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert written == [f"date=2026-01-0{d}/part.parquet" for d in (1, 2, 4)]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}

    _dataset(tmp_path)  # the data is fixed
    again = tdm.run_partitions(
        pipeline,
        write=write,
        executor=Dask(dask_client),
        partitions=[n.name for n in report.failed],
    )
    assert again.ok and list(again.nodes) == ["date=2026-01-03/part.csv"]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the others were not touched
    assert pd.read_parquet(out / "date=2026-01-03" / "part.parquet")["total"].tolist() == [
        4,
        32,
        303,
    ]


def test_partition_by_writes_key_value_folders(tmp_path: Path) -> None:
    pattern = _dataset(tmp_path, days=2)
    out = tmp_path / "curated"
    report = tdm.run_partitions(
        files.read(pattern) >> add_total(),
        write=files.write(str(out) + "/", format="parquet", partition_by=["date"]),
    )
    assert report.ok, report.error
    one = pd.read_parquet(out / "date=2026-01-01" / "part.parquet")
    assert "date" not in one.columns  # it lives in the folder name, as files.write does it
    back = tdm.run(files.read(str(out) + "/", format="parquet")).output
    assert sorted(back["date"].astype(str).unique()) == ["2026-01-01", "2026-01-02"]


def test_partition_by_needs_folder_keys(tmp_path: Path) -> None:
    pattern = _dataset(tmp_path, days=1)
    with pytest.raises(DefinitionError, match="must be key=value folder names of the input"):
        tdm.run_partitions(
            files.read(pattern),
            write=files.write(str(tmp_path / "o") + "/", format="csv", partition_by=["a"]),
        )


def test_without_a_write_the_outputs_come_back(tmp_path: Path, dask_client: Client) -> None:
    pattern = _dataset(tmp_path, days=2)
    report = tdm.run_partitions(
        files.read(pattern) >> add_total(), executor=Dask(dask_client), params={"k": 1}
    )
    assert report.ok
    first = report.outputs["date=2026-01-01/part.csv"]
    assert first["total"].tolist() == [2, 12, 103]


def test_max_parallel_bounds_partitions_in_flight(tmp_path: Path) -> None:
    pattern = _dataset(tmp_path, days=4)

    class InFlight(Hook):
        def __init__(self) -> None:
            self.now = 0
            self.most = 0

        def before_node(self, **_: Any) -> None:
            self.now += 1
            self.most = max(self.most, self.now)

        def after_node(self, **_: Any) -> None:
            self.now -= 1

    hook = InFlight()
    report = tdm.run_partitions(
        files.read(pattern) >> add_total(),
        executor=Threads(max_workers=4),
        max_parallel=2,
        runtime=Runtime(hooks=[hook]),
    )
    assert report.ok and len(report.nodes) == 4
    assert hook.most == 2


def test_clear_errors(tmp_path: Path) -> None:
    pattern = _dataset(tmp_path, days=2)
    with pytest.raises(InputError, match=r"did you mean 'date=2026-01-02/part\.csv'"):
        tdm.run_partitions(files.read(pattern), partitions=["date=2026-01-2/part.csv"])
    with pytest.raises(DefinitionError, match=r"exactly one files\.read"):
        tdm.run_partitions(tdm.inputs.frame("x") >> add_total())
    with pytest.raises(ValueError, match="max_parallel must be at least 1"):
        tdm.run_partitions(files.read(pattern), max_parallel=0)


def test_s3_dataset_with_a_secret_on_dask(
    fresh_s3_server: Any, dask_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = fresh_s3_server
    s3.make_bucket("raw")
    s3.make_bucket("curated")
    client = s3.boto3_client()
    for day in (1, 2):
        body = pd.DataFrame({"a": [day], "b": [day]}).to_csv(index=False).encode()
        client.put_object(Bucket="raw", Key=f"events/date=2026-01-0{day}/p.csv", Body=body)
    secret = {
        "TDM_SECRET__S3__KEY": s3.key,
        "TDM_SECRET__S3__SECRET": s3.secret,
        "TDM_SECRET__S3__ENDPOINT_URL": s3.endpoint_url,
    }
    for name, value in secret.items():
        monkeypatch.setenv(name, value)  # the client lists the files
    dask_client.run(_set_env, secret)  # the workers read and write them
    try:
        report = tdm.run_partitions(
            files.read("s3://raw/events/date=*/*.csv", secret="S3") >> add_total(),
            write=files.write("s3://curated/events/", format="csv", secret="S3"),
            executor=Dask(dask_client),
        )
    finally:
        dask_client.run(_set_env, dict.fromkeys(secret))
    assert report.ok, report.error
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="curated")["Contents"])
    assert keys == ["events/date=2026-01-01/p.csv", "events/date=2026-01-02/p.csv"]


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_the_audit_trail_has_one_entry_per_partition(tmp_path: Path, dask_client: Client) -> None:
    pattern = _dataset(tmp_path, days=3, broken=2)
    store = tdm.state.memory()
    report = tdm.run_partitions(
        files.read(pattern) >> add_total(),
        write=files.write(str(tmp_path / "out") + "/", format="csv"),
        executor=Dask(dask_client),
        runtime=Runtime(state=store),
        pipeline_name="events",
    )
    record = store.get(report.run_id)
    assert record.pipeline_name == "events" and record.status == "FAILURE"
    assert [(n.name, n.status, n.rows_out) for n in record.nodes] == [
        ("date=2026-01-01/part.csv", "SUCCESS", 3),
        ("date=2026-01-02/part.csv", "FAILURE", None),
        ("date=2026-01-03/part.csv", "SUCCESS", 3),
    ]


def test_an_empty_partition_selection_says_how_to_fix_it() -> None:
    import pandas as pd

    import tdm
    from tdm import files
    from tdm.errors import InputError

    tdm.run(
        tdm.inputs.frame("x") >> files.write("memory://empty-sel/raw/day=1/a.csv"),
        inputs={"x": pd.DataFrame({"n": [1]})},
    )
    with pytest.raises(InputError, match=r"partitions= selects no partition.*report\.failed"):
        tdm.run_partitions(files.read("memory://empty-sel/raw/*/*.csv"), partitions=[])
