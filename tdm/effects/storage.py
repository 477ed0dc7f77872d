"""Where a file effect reads or writes: URIs, fsspec filesystems, credentials, retries, errors.

Used by the file handlers (:mod:`tdm.effects.files`) and by partitioned runs. It

* resolves relative paths against ``Runtime.files`` (default: the current directory);
* builds fsspec storage options from the named secret section, inside the handler only;
* retries transient storage errors (tenacity: bounded attempts, exponential backoff, jitter) and
  never retries a missing file, a permission error or a format error.

Retry settings: ``Runtime(options={"files": {"attempts": 4, "max_wait": 5.0}})``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import pyarrow as pa

from tdm.effects.dispatch import EffectEnv
from tdm.effects.retrying import retried
from tdm.errors import EffectError, SecretNotFoundError

if TYPE_CHECKING:
    from tenacity import Retrying

__all__ = ["FileTarget", "is_transient", "open_target", "resolve_uri", "storage_options"]

_T = TypeVar("_T")

_LOCAL = frozenset({"file", "local"})
_S3 = frozenset({"s3", "s3a"})
_AZURE = frozenset({"abfs", "abfss", "az"})


# --------------------------------------------------------------------------------------------
# URIs, filesystems and credentials
# --------------------------------------------------------------------------------------------
def resolve_uri(uri: str, base: str | None) -> str:
    """``uri`` made absolute: relative paths resolve against ``base`` (default: the cwd).

    >>> resolve_uri("out/x.csv", "memory://")
    'memory://out/x.csv'
    >>> resolve_uri("x.csv", "s3://bucket/prefix/")
    's3://bucket/prefix/x.csv'
    >>> resolve_uri("s3://b/k.csv", "/data"), resolve_uri("file:///tmp/a.csv", None)
    ('s3://b/k.csv', '/tmp/a.csv')
    """
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        return uri
    path = os.path.expanduser(uri)
    if os.path.isabs(path):
        return path
    if base is None:
        return os.path.abspath(path)
    if base.startswith("file://"):
        base = base[len("file://") :]
    if "://" in base:
        head = base if base.endswith("://") else base.rstrip("/") + "/"
        return head + path.replace(os.sep, "/")
    return os.path.join(os.path.abspath(os.path.expanduser(base)), path)


def _first(section: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in section:
            return section[name]
    return None


_S3_KEYS: Mapping[str, tuple[str, ...]] = {
    "key": ("key", "aws_access_key_id", "access_key_id", "access_key"),
    "secret": (
        "secret",
        "aws_secret_access_key",
        "secret_access_key",
        "secret_access_key_id",  # the original tdm's name
        "secret_key",
    ),
    "token": ("token", "session_token", "aws_session_token"),
    "region": ("region", "region_name", "aws_region", "aws_default_region"),
    "endpoint_url": ("endpoint_url", "endpoint", "aws_endpoint_url"),
    "profile": ("profile", "aws_profile"),
}
_AZURE_KEYS: Mapping[str, tuple[str, ...]] = {
    "connection_string": ("connection_string", "connectionstring", "conn_str"),
    "account_name": ("account_name", "accountname", "storage_account"),
    "account_key": ("account_key", "accountkey"),
    "sas_token": ("sas_token", "sas"),
    "tenant_id": ("tenant_id",),
    "client_id": ("client_id",),
    "client_secret": ("client_secret",),
    "account_host": ("account_host", "blob_host"),
}


def _normalise(
    section: Mapping[str, Any], known: Mapping[str, tuple[str, ...]], secret: str, store: str
) -> dict[str, Any]:
    lowered = {str(k).lower(): v for k, v in section.items()}
    aliases = {alias for names in known.values() for alias in names}
    unknown = sorted(set(lowered) - aliases)
    if unknown:
        raise SecretNotFoundError(
            f"secret {secret!r} has key(s) {', '.join(map(repr, unknown))} that the {store} "
            f"file store does not use; use: {', '.join(known)} (or their aliases)"
        )
    out: dict[str, Any] = {}
    for canonical, names in known.items():
        value = _first(lowered, *names)
        if value is not None:
            out[canonical] = value
    return out


def _reveal(value: Any) -> Any:
    reveal = getattr(value, "reveal", None)
    return reveal() if callable(reveal) else value


def storage_options(
    protocol: str, secret: str | None, env: EffectEnv, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """fsspec options for ``protocol`` from the secret section named ``secret``.

    S3 keys: ``key``, ``secret``, ``token`` (session token), ``region``, ``endpoint_url``,
    ``profile`` (aliases: ``aws_access_key_id``, ``aws_secret_access_key``, ...). Without a
    secret, s3fs uses the default AWS credential chain. Azure keys: ``connection_string``; or
    ``account_name`` with ``account_key``, ``sas_token`` or a service principal
    (``tenant_id``, ``client_id``, ``client_secret``). Other protocols get the section as is.
    Values are revealed only here, into the dict handed to fsspec.
    """
    opts: dict[str, Any] = dict(extra or {})
    if secret is None:
        return opts
    section = env.secret(secret)
    if protocol in _S3:
        s3 = _normalise(section, _S3_KEYS, secret, "S3")
        if ("key" in s3) != ("secret" in s3):
            raise SecretNotFoundError(
                f"secret {secret!r} must hold both 'key' and 'secret' (access key id and secret "
                "access key), or neither (to use a profile or the default AWS credential chain)"
            )
        client_kwargs = dict(opts.get("client_kwargs", {}))
        for name in ("key", "secret", "token", "profile"):
            if name in s3:
                opts[name] = _reveal(s3[name])
        if "region" in s3:
            client_kwargs["region_name"] = _reveal(s3["region"])
        if "endpoint_url" in s3:
            client_kwargs["endpoint_url"] = _reveal(s3["endpoint_url"])
        if client_kwargs:
            opts["client_kwargs"] = client_kwargs
        return opts
    if protocol in _AZURE:
        az = _normalise(section, _AZURE_KEYS, secret, "Azure Blob")
        needed = {"tenant_id", "client_id", "client_secret"}
        principal = needed & set(az)
        if principal and principal != needed:
            raise SecretNotFoundError(
                f"secret {secret!r}: a service principal needs tenant_id, client_id and "
                f"client_secret (missing: {', '.join(sorted(needed - principal))})"
            )
        if "connection_string" not in az and "account_name" not in az:
            raise SecretNotFoundError(
                f"secret {secret!r} needs 'connection_string', or 'account_name' with "
                "'account_key', 'sas_token' or a service principal (tenant_id, client_id, "
                "client_secret)"
            )
        for name, value in az.items():
            opts[name] = _reveal(value)
        return opts
    for name, value in section.items():
        opts[name] = _reveal(value)
    return opts


class _LocalFS:
    """fsspec's local filesystem, made on first use: reading or writing one local file goes
    through the OS and pyarrow, so the process does not import fsspec (~70 ms) for it."""

    protocol = ("file", "local")

    def __init__(self) -> None:
        self._fs: Any = None

    def invalidate_cache(self, path: str | None = None) -> None:
        if self._fs is not None:  # the local filesystem caches no listing
            self._fs.invalidate_cache(path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe before __init__ ran
            raise AttributeError(name)
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return getattr(self._fs, name)


def _url_to_fs(resolved: str, opts: Mapping[str, Any]) -> tuple[Any, str]:
    if "://" not in resolved and "::" not in resolved and not opts:
        return _LocalFS(), resolved.rstrip("/") or "/"  # the path fsspec would give
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(resolved, **opts)
    return fs, str(path)


@dataclass(frozen=True, slots=True)
class FileTarget:
    """A resolved location: the filesystem, the path on it, and a printable URI."""

    fs: Any
    path: str
    uri: str

    @property
    def protocol(self) -> str:
        proto = self.fs.protocol
        return str(proto if isinstance(proto, str) else proto[0])

    @property
    def local(self) -> bool:
        return self.protocol in _LOCAL

    def display(self, path: str) -> str:
        """A printable URI for ``path`` on this filesystem (plain paths for local files)."""
        if self.local:
            return path
        if self.protocol == "memory":
            return "memory://" + path.lstrip("/")
        return f"{self.protocol}://{path.lstrip('/')}"


def _safe(uri: str) -> str:
    """``uri`` without any ``user:password@`` part."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0] and ":" in rest.split("@", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def open_target(
    uri: str, secret: str | None, options: Mapping[str, Any], env: EffectEnv
) -> FileTarget:
    """Resolve ``uri`` against ``Runtime.files`` and open its filesystem with the secret."""
    resolved = resolve_uri(uri, env.runtime.files)
    protocol = resolved.split("://", 1)[0] if "://" in resolved else "file"
    extra = options.get("storage_options")
    opts = storage_options(protocol, secret, env, extra)
    try:
        fs, path = _url_to_fs(resolved, opts)
    except ValueError as exc:
        if "protocol not known" not in str(exc).lower():
            raise
        from fsspec.registry import known_implementations

        raise EffectError(
            f"cannot open {_safe(resolved)}: unknown storage protocol {protocol!r}; known: "
            f"{', '.join(sorted(known_implementations))} (or install the fsspec "
            "implementation that provides it)",
            node=env.node,
            uri=_safe(resolved),
        ) from None
    return FileTarget(fs, path, _safe(resolved))


# --------------------------------------------------------------------------------------------
# retries
# --------------------------------------------------------------------------------------------
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientOSError",
        "ClientPayloadError",
        "ServiceRequestError",
        "ServiceResponseError",
        "IncompleteReadError",
        "ResponseStreamingError",
        "ProtocolError",
        "RemoteDisconnected",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "ServerBusy",
        "OperationTimedOut",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_PERMANENT = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: a dropped connection, a timeout, throttling, a 5xx.

    A missing file, a permission error or a format error is not.

    >>> is_transient(ConnectionResetError()), is_transient(FileNotFoundError("x"))
    (True, False)
    >>> is_transient(ValueError("bad csv"))
    False
    """
    if isinstance(exc, (*_PERMANENT, EffectError)):
        return False
    for e in _chain(exc):
        if isinstance(e, _PERMANENT):
            return False
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if isinstance(e, OSError) and e.errno in (errno.ETIMEDOUT, errno.ECONNRESET, errno.EBUSY):
            return True
        if type(e).__name__ in _TRANSIENT_NAMES:
            return True
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
                return True
        status = getattr(e, "status_code", None)
        if isinstance(status, int) and status in _TRANSIENT_STATUS:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Retry:
    attempts: int = 4
    max_wait: float = 5.0
    multiplier: float = 0.1

    @classmethod
    def of(cls, env: EffectEnv) -> _Retry:
        raw = env.runtime.options.get("files", {}) if env.runtime.options else {}
        if not isinstance(raw, Mapping):
            return cls()
        default = cls()
        return cls(
            attempts=max(1, int(raw.get("attempts", default.attempts))),
            max_wait=float(raw.get("max_wait", default.max_wait)),
            multiplier=float(raw.get("multiplier", default.multiplier)),
        )

    def __call__(self, fn: Callable[[], _T]) -> _T:
        return retried(fn, self._policy, lambda exc: self.attempts > 1 and is_transient(exc))

    def _policy(self) -> Retrying:
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_random_exponential,
        )

        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.multiplier, max=self.max_wait),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def _effect_error(
    verb: str, uri: str, fmt: str, exc: BaseException, env: EffectEnv, retry: _Retry
) -> EffectError:
    if isinstance(exc, EffectError):
        return exc
    where = f"cannot {verb} {uri}"
    if isinstance(exc, SecretNotFoundError):
        text = f"{where}: {exc}"
    elif isinstance(exc, FileNotFoundError):
        base = env.runtime.files or "the current directory"
        text = (
            f"{where}: no such file or folder ({_cause(exc)}); check the path (relative paths "
            f"resolve against Runtime.files: {base}) and that the bucket/container exists"
        )
    elif isinstance(exc, PermissionError):
        text = (
            f"{where}: permission denied ({_cause(exc)}); check the credentials in the named "
            "secret and the store's access policy"
        )
    elif isinstance(exc, pa.ArrowInvalid | ValueError | pd.errors.ParserError | UnicodeError):
        text = (
            f"{where} as {fmt}: {_cause(exc)}; check the file's contents, or pass format= / "
            "reader options if they differ from its extension's defaults"
        )
    elif isinstance(exc, ImportError):
        scheme = uri.split("://", 1)[0] if "://" in uri else "file"
        extra = "s3" if scheme in _S3 else "azure" if scheme in _AZURE else None
        hint = (
            f"pip install 'tdm-pipelines[{extra}]'"
            if extra
            else "install the fsspec implementation"
        )
        text = f"{where}: {_cause(exc)}; {hint}"
    elif is_transient(exc):
        text = f"{where}: {_cause(exc)} (gave up after {retry.attempts} attempts)"
    else:
        text = f"{where}: {_cause(exc)}"
    return EffectError(text, node=env.node, uri=uri)


def _cause(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {message}" if message else name
