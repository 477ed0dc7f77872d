"""An audit store on any fsspec URL: one JSON Lines object per run, never rewritten."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Self

from tdm.effects.secrets import SecretsProvider, default_secrets
from tdm.effects.state.records import (
    CursorRecord,
    RunRecord,
)
from tdm.effects.state.sqlite_store import _dumps
from tdm.effects.state.store import StateStore, _json_copy, _matches, _page, _when_text

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "_"


# Original tdm secret keys, mapped onto fsspec storage options.
_OPTION_ALIASES: Final = {
    "access_key_id": "key",
    "aws_access_key_id": "key",
    "secret_access_key_id": "secret",
    "secret_access_key": "secret",
    "aws_secret_access_key": "secret",
    "session_token": "token",
    "aws_session_token": "token",
}


def open_folder(
    url: str,
    secret: str | None,
    provider: SecretsProvider | None,
    storage_options: Mapping[str, Any],
) -> tuple[Any, str]:
    """The fsspec filesystem and root path of a store's folder ``url``: the keys of the secret
    ``secret`` (original tdm names mapped by :data:`_OPTION_ALIASES`) become storage options,
    revealed only into the dict handed to fsspec."""
    from fsspec.core import url_to_fs

    options: dict[str, Any] = dict(storage_options)
    if secret is not None:
        chosen = provider if provider is not None else default_secrets()
        for key, value in chosen.section(secret).items():
            options[_OPTION_ALIASES.get(key.lower(), key)] = value.reveal()
    fs, root = url_to_fs(url, **options)
    return fs, str(root).rstrip("/")


class FileStore(StateStore):
    """Audit records as JSON Lines objects under an fsspec URL; written once, never rewritten.

    Layout: ``<url>/runs/<pipeline_id>/<started_at>_<run_id>_<STATUS>.jsonl`` (one line: the
    run record with its nodes). Listing never needs to open an object to sort or to filter by
    pipeline id or status, and concatenating every object gives a JSON Lines file of all runs.

    Args:
        url: the folder, e.g. ``"s3://state-bucket/tdm"``, ``"az://state/tdm"``, ``"/var/tdm"``.
        secret: the name of a secret whose keys are storage options (``key``/``secret`` or the
            original ``access_key_id``/``secret_access_key_id``, ``connection_string``, ...).
        storage_options: options that are not secret (``{"endpoint_url": ...}``, say).

    >>> store = FileStore("memory://tdm-doctest/audit")
    >>> store.record(RunRecord("r1", "p", "SUCCESS", "2026-01-01T00:00:00+00:00"))
    >>> [r.run_id for r in store.runs(pipeline="p")]
    ['r1']
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        provider: SecretsProvider | None = None,
    ) -> None:
        if not url or not isinstance(url, str):
            raise ValueError(f"a file store needs a folder URL, got {url!r}")
        self.url = url.rstrip("/")
        self.secret = secret
        self.storage_options = dict(storage_options or {})
        self._provider = provider

    def using(self, secrets: SecretsProvider | None) -> Self:
        if secrets is None or self.secret is None:
            return self
        return type(self)(
            self.url, secret=self.secret, storage_options=self.storage_options, provider=secrets
        )

    def _fs(self) -> tuple[Any, str]:
        return open_folder(self.url, self.secret, self._provider, self.storage_options)

    def record(self, run: RunRecord) -> None:
        fs, root = self._fs()
        stamp = run.started_at.replace("-", "").replace(":", "").replace("+0000", "Z")
        stamp = _safe(stamp.replace("+", "p"))
        folder = f"{root}/runs/{_safe(run.pipeline_id)}"
        name = f"{stamp}_{_safe(run.run_id)}_{_safe(run.status)}.jsonl"
        data = (run.to_json() + "\n").encode()
        fs.makedirs(folder, exist_ok=True)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocols:  # a reader must never see half a file: write, then rename
            tmp = f"{folder}/.{name}.tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, f"{folder}/{name}")
        else:
            fs.pipe_file(f"{folder}/{name}", data)

    def _paths(self) -> tuple[Any, list[str]]:
        fs, root = self._fs()
        base = f"{root}/runs"
        if not fs.exists(base):
            return fs, []
        # Every folder, even when one is named after ``pipeline``: another pipeline's runs
        # may carry it as their name. Records are read newest first, only up to a page's end.
        found = fs.glob(f"{base}/*/*.jsonl")
        return fs, [str(p) for p in found]

    def runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        nodes: bool = True,
        offset: int = 0,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> list[RunRecord]:
        low, high = _when_text(since), _when_text(until)
        fs, paths = self._paths()
        if status is not None:
            suffix = f"_{_safe(status.upper())}.jsonl"
            paths = [p for p in paths if p.endswith(suffix)]
        paths.sort(key=lambda p: p.rsplit("/", 1)[-1], reverse=True)
        # Object names start with the start time, so the newest come first: a page opens
        # only the objects up to its end.
        wanted = None if limit is None else offset + limit
        out: list[RunRecord] = []
        for path in paths:
            for line in fs.cat_file(path).decode().splitlines():
                if not line.strip():
                    continue
                run = RunRecord.from_dict(json.loads(line))
                if not nodes:
                    run = dataclasses.replace(run, node_table={}, schemas={}, plan="")
                if _matches(run, pipeline, status, low, high):
                    out.append(run)
            if wanted is not None and len(out) >= wanted:
                break
        out.sort(key=lambda r: r.started_at, reverse=True)
        return _page(out, offset, limit)

    def _cursor_path(self, pipeline_id: str) -> tuple[Any, str]:
        fs, root = self._fs()
        return fs, f"{root}/cursors/{_safe(pipeline_id)}.json"

    def cursors(self, pipeline_id: str) -> dict[str, CursorRecord]:
        fs, path = self._cursor_path(pipeline_id)
        with contextlib.suppress(Exception):
            fs.invalidate_cache(path)
        if not fs.exists(path):
            return {}
        data = json.loads(fs.cat_file(path).decode())
        return {
            node: CursorRecord(pipeline_id, node, item["value"], item["run_id"], item["updated_at"])
            for node, item in data.items()
        }

    def _put_cursors(self, pipeline_id: str, records: Mapping[str, CursorRecord]) -> None:
        fs, path = self._cursor_path(pipeline_id)
        data = _dumps({n: r.as_dict() for n, r in records.items()}).encode()
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "file" in protocols:  # one object replaced at once: a reader sees old or new
            tmp = f"{path}.{os.getpid()}.tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        else:  # object stores: a single PUT replaces the object atomically
            fs.pipe_file(path, data)

    def commit_cursors(
        self, pipeline_id: str, run_id: str, values: Mapping[str, Any], *, at: str
    ) -> None:
        records = self.cursors(pipeline_id)
        for node, value in values.items():
            records[node] = CursorRecord(pipeline_id, node, _json_copy(value), run_id, at)
        self._put_cursors(pipeline_id, records)

    def reset_cursors(self, pipeline_id: str, node: str | None = None) -> list[str]:
        records = self.cursors(pipeline_id)
        gone = [n for n in records if node is None or n == node]
        if gone:
            self._put_cursors(pipeline_id, {n: r for n, r in records.items() if n not in gone})
        return gone

    def describe(self) -> str:
        return f"files:{self.url}"

    def __repr__(self) -> str:
        secret = f", secret={self.secret!r}" if self.secret else ""
        return f"FileStore({self.url!r}{secret})"
