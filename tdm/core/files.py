"""File effect descriptions: :class:`Read` and :class:`Write`, frozen values over a URI.

They say *what* to read or write (a URI, a format, options, a write mode, the *name* of a secret)
and never do it; ``tdm.effects.files`` performs them with fsspec. Build them with the public
factories :func:`tdm.files.read` and :func:`tdm.files.write`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from tdm.core.effect import Effect
from tdm.core.pipe import _freeze
from tdm.errors import DefinitionError

__all__ = [
    "COMPRESSIONS",
    "FORMATS",
    "MODES",
    "Format",
    "Read",
    "ReadAfter",
    "Write",
    "WriteMode",
    "infer_format",
    "split_compression",
]

Format = Literal["csv", "parquet", "json", "jsonl"]
WriteMode = Literal["overwrite", "error_if_exists", "append", "upsert"]
FORMATS: tuple[str, ...] = get_args(Format)
MODES: tuple[str, ...] = get_args(WriteMode)

COMPRESSIONS: Mapping[str, str] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".xz": "xz",
    ".zst": "zstd",
    ".zstd": "zstd",
}
_EXTENSIONS: Mapping[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

# Storage-option keys that hold credentials: they belong in a named secret, never in a pipeline
# (which is data: printed, logged, pickled to workers and stored in the audit trail).
_CREDENTIAL_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "account_key",
        "connection_string",
        "sas_token",
        "client_secret",
        "credential",
        "credentials",
        "secrets",
    }
)


def split_compression(path: str) -> tuple[str, str | None]:
    """``path`` without a compression suffix, and the compression it names (or None).

    >>> split_compression("s3://b/devices.csv.gz")
    ('s3://b/devices.csv', 'gzip')
    >>> split_compression("out/devices.parquet")
    ('out/devices.parquet', None)
    """
    lower = path.lower()
    for suffix, compression in COMPRESSIONS.items():
        if lower.endswith(suffix):
            return path[: -len(suffix)], compression
    return path, None


def _extension(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def infer_format(uri: str, format: str | None = None) -> str:
    """The format of ``uri``: ``format`` if given (checked), else from its extension.

    Raises ``DefinitionError`` naming the URI and suggesting ``format=`` when the extension is
    unknown.

    >>> infer_format("s3://raw/devices/*.parquet"), infer_format("x.jsonl.gz")
    ('parquet', 'jsonl')
    >>> infer_format("out/devices", "csv")
    'csv'
    """
    if format is not None:
        if format not in FORMATS:
            raise DefinitionError(
                f"unknown file format {format!r} for {uri!r}; use one of: {', '.join(FORMATS)}"
            )
        return format
    base, _ = split_compression(uri)
    ext = _extension(base)
    found = _EXTENSIONS.get(ext)
    if found is None:
        what = f"extension {ext!r}" if ext else "no extension"
        known = ", ".join(sorted(set(_EXTENSIONS) | {e + ".gz" for e in (".csv", ".jsonl")}))
        raise DefinitionError(
            f"cannot tell the file format of {uri!r} ({what}); pass format= one of "
            f"{', '.join(map(repr, FORMATS))} (e.g. files.read({uri!r}, format='parquet')), "
            f"or use a known extension: {known}"
        )
    return found


def _check_options(options: Mapping[str, Any], where: str) -> None:
    storage = options.get("storage_options", {})
    if not isinstance(storage, Mapping):
        raise DefinitionError(f"{where}: storage_options must be a mapping")
    leaked = sorted(
        k for k in (*options, *storage) if isinstance(k, str) and k.lower() in _CREDENTIAL_KEYS
    )
    if leaked:
        raise DefinitionError(
            f"{where}: {', '.join(map(repr, leaked))} look like credentials; a pipeline is data "
            "(printed, logged, stored in the audit trail), so put them in a secret section and "
            "pass its name: secret='S3'"
        )


_NAME_CHARS = re.compile(r"[^0-9A-Za-z_]+")


def _stem(uri: str) -> str:
    """A short identifier from the last meaningful path segment of ``uri``."""
    base, _ = split_compression(uri)
    parts = [p for p in re.split(r"[/\\]", base.split("://", 1)[-1]) if p]
    for part in reversed(parts):
        if any(c in part for c in "*?["):
            continue
        stem = part.rsplit(".", 1)[0] if "." in part[1:] else part
        cleaned = _NAME_CHARS.sub("_", stem).strip("_")
        if cleaned:
            return cleaned
    return "files"


@dataclass(frozen=True, slots=True)
class _FileEffect(Effect):
    uri: str
    format: str
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    secret: str | None = None
    _options_key: Any = field(init=False, repr=False, compare=True)

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri.strip():
            raise DefinitionError(f"a file URI must be a non-empty string, got {self.uri!r}")
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise DefinitionError(
                f"secret= takes the *name* of a secret section (a string), got "
                f"{type(self.secret).__name__}"
            )
        object.__setattr__(self, "format", infer_format(self.uri, self.format))
        object.__setattr__(self, "options", dict(self.options))
        _check_options(self.options, f"{type(self).__name__.lower()} {self.uri!r}")
        object.__setattr__(self, "_options_key", _freeze(self.options))

    def _describe_args(self) -> str:
        parts = [repr(self.uri), f"format={self.format!r}"]
        if self.secret is not None:
            parts.append(f"secret={self.secret!r}")
        parts.extend(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Read(_FileEffect):
    """Read one file, a glob of files or a partitioned folder into one frame (a source).

    Attributes:
        uri: a local path (relative paths resolve against ``Runtime.files``), ``file://``,
            ``memory://``, ``s3://``, ``abfs://``/``az://`` or any installed fsspec protocol; may
            hold a glob (``*``, ``**``) whose matches are concatenated in path order.
        format: ``csv``, ``parquet``, ``json`` (records) or ``jsonl`` (inferred from the
            extension when not given).
        options: reader options (e.g. ``sep``, ``columns``, ``dtype``; ``storage_options`` for
            non-secret fsspec settings).
        secret: the name of the secret section with the store's credentials.
        path_column: if set, a column of that name holds each row's source path.

    >>> Read("s3://raw/devices.csv", None, secret="S3").describe()
    "files.read('s3://raw/devices.csv', format='csv', secret='S3')"
    """

    arity: ClassVar[int] = 0  # type: ignore[misc]
    path_column: str | None = None
    incremental: bool = False
    seen: tuple[tuple[str, str], ...] | None = None
    """Filled in at run time for an incremental read: the (path, version) pairs earlier
    successful runs read, to be skipped. None: not an incremental read in progress."""
    keep_columns: tuple[str, ...] | None = None
    """Set by plan optimisation (:mod:`tdm.core.pushdown`): the only columns the pipeline
    uses; the reader may skip the others (a listed column the files lack is simply absent)."""
    row_filter: tuple[tuple[str, str, Any], ...] | None = None
    """Set by plan optimisation: ``(column, op, literal)`` conditions a following
    ``filter_rows`` applies; a reader may drop rows (skip parquet row groups) where one cannot
    hold, labelling the rows it keeps with their positions in the whole read."""
    dictionary_columns: tuple[str, ...] | None = None
    """Set by plan optimisation (:mod:`tdm.core.group_keys`): text columns used only as group
    keys by a later aggregate; a CSV reader may hold them dictionary-encoded (a pandas
    category, its categories sorted) and that aggregate gives them back as text."""

    def default_name(self) -> str:
        return f"read_{_stem(self.uri)}"

    def describe(self) -> str:
        extra = f", path_column={self.path_column!r}" if self.path_column else ""
        if self.incremental:
            extra += ", incremental=True"
        if self.keep_columns is not None:
            extra += f", keep_columns={list(self.keep_columns)!r}"
        if self.row_filter:
            extra += f", row_filter={list(self.row_filter)!r}"
        if self.dictionary_columns:
            extra += f", dictionary_columns={list(self.dictionary_columns)!r}"
        return f"files.read({self._describe_args()}{extra})"

    def with_cursor(self, value: Any) -> Read:
        """This read, skipping the files in ``value`` (path -> version) already read.

        >>> Read("in/*.csv", None, incremental=True).with_cursor({"in/a.csv": "1"}).seen
        (('in/a.csv', '1'),)
        """
        import dataclasses

        pairs = tuple(sorted((str(k), str(v)) for k, v in dict(value or {}).items()))
        return dataclasses.replace(self, incremental=False, seen=pairs)


@dataclass(frozen=True, slots=True)
class ReadAfter(Read):
    """A :class:`Read` that waits for one parent (e.g. the write that produces its input)."""

    arity: ClassVar[int] = 1  # type: ignore[misc]

    def describe(self) -> str:
        return Read.describe(self).replace("files.read(", "files.read(after, ", 1)


@dataclass(frozen=True, slots=True)
class Write(_FileEffect):
    """Write the incoming frame to ``uri`` atomically, and pass the frame on unchanged.

    Attributes:
        uri: where to write (see :class:`Read`); a folder when ``partition_by`` is set.
        format: ``csv``, ``parquet``, ``json`` or ``jsonl``.
        mode: ``overwrite`` (default), ``error_if_exists``, ``append`` or ``upsert``.
        partition_by: columns whose values name sub-folders (``platform=ios/part-....parquet``).
        key: with ``mode="upsert"``, the columns identifying a row: rows of the frame replace
            the stored rows with the same key, the others are added.
        options: writer options (e.g. ``sep``, ``compression``; ``storage_options``).
        secret: the name of the secret section with the store's credentials.

    >>> Write("out/devices.csv", None).describe()
    "files.write('out/devices.csv', format='csv', mode='overwrite')"
    """

    arity: ClassVar[int] = 1  # type: ignore[misc]
    mode: str = "overwrite"
    partition_by: tuple[str, ...] | None = None
    key: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _FileEffect.__post_init__(self)
        if self.mode not in MODES:
            raise DefinitionError(
                f"unknown write mode {self.mode!r} for {self.uri!r}; use one of: {', '.join(MODES)}"
            )
        if self.key is not None:
            cols = (self.key,) if isinstance(self.key, str) else tuple(self.key)
            if not cols or not all(isinstance(c, str) and c for c in cols):
                raise DefinitionError(
                    f"key for {self.uri!r} must be a non-empty list of column names, "
                    f"got {self.key!r}"
                )
            object.__setattr__(self, "key", cols)
        if (self.mode == "upsert") != (self.key is not None):
            raise DefinitionError(
                f"files.write({self.uri!r}): mode='upsert' merges rows by key, so it needs "
                "key=[...] (the columns that identify a row), and key= only means something "
                "with mode='upsert'"
            )
        if any(c in self.uri for c in "*?["):
            raise DefinitionError(f"cannot write to a glob pattern: {self.uri!r}")
        if self.partition_by is not None:
            cols = (
                (self.partition_by,)
                if isinstance(self.partition_by, str)
                else tuple(self.partition_by)
            )
            if not cols or not all(isinstance(c, str) and c for c in cols):
                raise DefinitionError(
                    f"partition_by for {self.uri!r} must be a non-empty list of column names, "
                    f"got {self.partition_by!r}"
                )
            object.__setattr__(self, "partition_by", cols)

    def default_name(self) -> str:
        return f"write_{_stem(self.uri)}"

    def describe(self) -> str:
        extra = f", mode={self.mode!r}"
        if self.partition_by:
            extra += f", partition_by={list(self.partition_by)!r}"
        if self.key:
            extra += f", key={list(self.key)!r}"
        return f"files.write({self._describe_args()}{extra})"
