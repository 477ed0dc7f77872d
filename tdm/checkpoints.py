"""Checkpoints: node outputs kept so that a failed run can be resumed.

``tdm.run(p, runtime=tdm.Runtime(checkpoints="file:///var/tdm/ckpt"))`` keeps every finished
node's output there (any fsspec URL); ``tdm.run(p, runtime=rt, resume=failed_report)`` then
restores them and runs only what did not finish. A pipeline's checkpoints are removed after
a successful run unless ``Runtime(keep_checkpoints=True)``; :func:`prune` removes old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tdm.effects.checkpoints import CheckpointStore, parse_age

__all__ = ["CheckpointStore", "parse_age", "prune", "store"]


def store(
    url: str, *, secret: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> CheckpointStore:
    """A checkpoint location: ``secret`` names the credentials (its keys are fsspec storage
    options, e.g. ``key``/``secret``/``endpoint_url`` for S3); ``storage_options`` are the
    settings that are not secret.

    >>> import tdm
    >>> tdm.Runtime(checkpoints=store("memory://ckpt-doc")).checkpoints.url
    'memory://ckpt-doc'
    """
    return CheckpointStore(url, dict(storage_options or {}), secret)


def prune(
    url: str | CheckpointStore, *, older_than: float | str, now: float | None = None
) -> list[str]:
    """Remove checkpoint files older than ``older_than`` (seconds, or ``"7d"``, ``"12h"``).

    >>> import pandas as pd
    >>> s = store("memory://ckpt-prune-doc")
    >>> s.save("p", "k", pd.DataFrame({"a": [1]}))
    >>> prune(s, older_than="7d")
    []
    """
    target = url if isinstance(url, CheckpointStore) else CheckpointStore(url)
    return target.prune(older_than, now=now)
