"""Files on local disk, ``memory://``, S3, Azure Blob or any fsspec store: ``read`` and ``write``.

>>> import pandas as pd, tdm
>>> from tdm import files
>>> out = tdm.inputs.frame("orders") >> files.write("memory://doc/orders.parquet")
>>> report = tdm.run(out, inputs={"orders": pd.DataFrame({"id": [1, 2]})})
>>> tdm.run(files.read("memory://doc/orders.parquet")).output["id"].tolist()
[1, 2]

Both build effect descriptions: nothing is read or written until ``tdm.run``. Credentials come
from a named secret section (``secret="S3"``), resolved only while the node runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tdm.core.files import Format, Read, ReadAfter, Write, WriteMode
from tdm.core.pipe import Op
from tdm.core.pipeline import Pipeline

__all__ = ["Format", "Read", "Write", "WriteMode", "read", "write"]


def read(
    uri: str,
    *,
    format: Format | None = None,
    secret: str | None = None,
    label: str | None = None,
    path_column: str | None = None,
    after: Pipeline | Op | None = None,
    incremental: bool = False,
    **options: Any,
) -> Pipeline:
    """A source that reads ``uri`` into one frame.

    Args:
        uri: a path (relative paths resolve against ``Runtime.files``, default the current
            directory), ``file://``, ``memory://``, ``s3://bucket/key``,
            ``abfs://container/path`` (or ``az://``), or any installed fsspec protocol. A glob
            (``*.parquet``, ``**/*.csv``) reads every match, concatenated in path order; a folder
            reads its files of the format, adding ``key=value`` folder names (a partitioned
            write's layout) as columns.
        format: ``"csv"``, ``"parquet"``, ``"json"`` (an array of records) or ``"jsonl"``;
            inferred from the extension (also ``.csv.gz``, ``.jsonl.gz``, ``.tsv``) if omitted.
        secret: the *name* of the secret section holding the store's credentials (S3: ``key``,
            ``secret``, ``token``, ``region``, ``endpoint_url``; Azure: ``connection_string``,
            or ``account_name`` + ``account_key`` / ``sas_token`` / service principal). Without
            one, S3 uses the default AWS credential chain.
        label: the node's name (default ``read_<file stem>``).
        path_column: add a column of this name holding each row's source path.
        after: run this read only after that pipeline's output succeeded (e.g. the write that
            produces the file); its frame is ignored.
        incremental: read only the files (of a glob or folder) that no earlier successful run
            of the pipeline read, by path and version (ETag, else modification time and size);
            kept per pipeline id and node in the audit store, like a REST cursor.
        **options: reader options, e.g. ``sep=";"``, ``columns=[...]``, ``dtype={"zip": str}``,
            ``encoding=``, ``na_values=``; ``storage_options={...}`` for non-secret fsspec
            settings. CSV uses pyarrow's multi-threaded reader unless an option needs pandas'.

    The frame's ``attrs["source_path"]`` is the file read (a list for a glob or folder).

    >>> import pandas as pd, tdm
    >>> w = tdm.inputs.frame("x") >> write("memory://doc/read/a.csv")
    >>> _ = tdm.run(w, inputs={"x": pd.DataFrame({"n": [1, 2]})})
    >>> df = tdm.run(read("memory://doc/read/*.csv", path_column="source_file")).output
    >>> df["n"].tolist(), df["source_file"].tolist(), df.attrs["source_path"]
    ([1, 2], ['memory://doc/read/a.csv', 'memory://doc/read/a.csv'], ['memory://doc/read/a.csv'])
    """
    fields: dict[str, Any] = {
        "label": label,
        "path_column": path_column,
        "incremental": bool(incremental),
    }
    fmt: Any = format
    if after is None:
        return Pipeline.of(Read(uri, fmt, options, secret, **fields))
    effect = ReadAfter(uri, fmt, options, secret, **fields)
    return Pipeline.apply(effect, [after])


def write(
    uri: str,
    *,
    format: Format | None = None,
    mode: WriteMode = "overwrite",
    partition_by: Sequence[str] | None = None,
    key: Sequence[str] | None = None,
    secret: str | None = None,
    label: str | None = None,
    **options: Any,
) -> Write:
    """A step that writes its frame to ``uri`` atomically and passes the frame on unchanged.

    Use it after ``>>``; the pipeline can go on after the write (ETLTLT).

    Args:
        uri: where to write (see :func:`read`); a folder when ``partition_by`` is given.
        format: ``"csv"``, ``"parquet"``, ``"json"`` or ``"jsonl"``; inferred from the
            extension if omitted (``.csv.gz`` writes gzip).
        mode: ``"overwrite"`` (default) replaces the output; ``"error_if_exists"`` fails if it
            exists; ``"append"`` adds rows (the columns must match); ``"upsert"`` merges by
            ``key``: a stored row whose key is in the frame is replaced, the frame's other rows
            are added (Parquet, one file or a partitioned folder; published all or nothing).
        partition_by: columns whose values name sub-folders, ``uri/col=value/part-....ext``
            (the columns are stored in the folder names, not the files). All partitions are
            published or none.
        secret: the *name* of the secret section with the store's credentials.
        label: the node's name (default ``write_<file stem>``).
        **options: writer options, e.g. ``sep=";"`` for CSV or ``compression="zstd"`` for
            Parquet; ``storage_options={...}`` for non-secret fsspec settings.

    A file is never seen half-written: local files are written under a temporary name and
    renamed; ``memory://`` and object stores get one PUT of the whole object.

    >>> import pandas as pd, tdm
    >>> p = tdm.inputs.frame("x") >> write("memory://doc/write/out.jsonl")
    >>> tdm.run(p, inputs={"x": pd.DataFrame({"a": [1]})}).output["a"].tolist()   # passed on
    [1]
    >>> import fsspec
    >>> fsspec.filesystem("memory").cat("/doc/write/out.jsonl")
    b'{"a":1}\\n'
    """
    parts = None if partition_by is None else tuple(partition_by)
    return Write(
        uri,
        format,  # type: ignore[arg-type]
        options,
        secret,
        label=label,
        mode=mode,
        partition_by=parts,
        key=None if key is None else tuple(key),
    )
