"""Retries that cost nothing until something fails: tenacity is imported on the first failure.

Most runs never retry, and importing tenacity costs 25-50 ms per process (it pulls in asyncio
and, when installed, tornado). :func:`retried` calls the function once; only a failure worth
retrying builds the tenacity policy, which is handed that first failure as its first attempt,
so attempt counts and waits are exactly the policy's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tenacity import Retrying

__all__ = ["retried"]

_T = TypeVar("_T")


def retried(
    fn: Callable[[], _T],
    policy: Callable[[], Retrying],
    worth_retrying: Callable[[Exception], bool] = lambda _: True,
) -> _T:
    """``fn()``, retried by the tenacity ``policy`` (built on the first failure only) when it
    raises an exception ``worth_retrying`` accepts.

    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ConnectionError("dropped")
    ...     return "ok"
    >>> from tenacity import Retrying, stop_after_attempt
    >>> retried(flaky, lambda: Retrying(stop=stop_after_attempt(3), reraise=True)), len(calls)
    ('ok', 3)
    """
    try:
        return fn()
    except Exception as exc:
        if not worth_retrying(exc):
            raise
        failed = [exc]

    def attempt() -> _T:
        if failed:
            raise failed.pop()
        return fn()

    return policy()(attempt)
