"""The text side of REST descriptions: URL checks, ``{column}`` templates, ``${secrets.key}``
references, and the redaction of credentials from every URL tdm shows. Pure string functions.
"""

from __future__ import annotations

import re
import string
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tdm.errors import DefinitionError

__all__ = ["SECRET_REF", "SENSITIVE_PARAMS", "redact_url", "secret_refs", "template_fields"]

# Query parameters whose values are credentials: redacted from every URL tdm shows.
SENSITIVE_PARAMS: frozenset[str] = frozenset(
    {
        "access_token", "api_key", "apikey", "api-key", "auth", "client_secret", "code",
        "id_token", "key", "pass", "passwd", "password", "pwd", "refresh_token", "secret",
        "sig", "signature", "token", "x-api-key",
    }
)  # fmt: skip

_FORMATTER = string.Formatter()


SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z0-9_.\-]+)\}")
"""``${secrets.key}`` in a header, query or body text (YAML style): filled in by the handler."""


def secret_refs(text: str) -> list[str]:
    """The secret keys a text refers to as ``${secrets.key}``.

    >>> secret_refs("Basic ${secrets.key}")
    ['key']
    """
    return SECRET_REF.findall(text)


def template_fields(text: str) -> list[str]:
    """The column names a ``{column}`` template reads (``{{`` escapes a brace); the
    ``${secrets.key}`` references are not columns.

    >>> template_fields("https://x.test/devices/{Uuid}/apps?since={Since:%Y}")
    ['Uuid', 'Since']
    >>> template_fields("Basic ${secrets.key} for {Uuid}")
    ['Uuid']
    """
    try:
        parsed = list(_FORMATTER.parse(SECRET_REF.sub("", text)))
    except ValueError as exc:
        raise DefinitionError(
            f"malformed template {text!r}: {exc}; write {{{{ for a literal brace"
        ) from None
    names = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if not field_name or field_name.isdigit():
            raise DefinitionError(
                f"template {text!r} has a positional field {{{field_name}}}; "
                "name a column instead, e.g. {Uuid}"
            )
        names.append(field_name)
    return names


def _check_url(url: str, what: str, templated: bool = False) -> None:
    if not isinstance(url, str) or not url:
        raise DefinitionError(f"{what} must be a non-empty URL string, got {url!r}")
    probe = re.sub(r"\{[^{}]*\}", "x", url) if templated else url
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DefinitionError(
            f"{what} must be an absolute http(s) URL like 'https://api.example.com/v1/items', "
            f"got {redact_url(url)!r}"
        )
    if SECRET_REF.search(url):
        raise DefinitionError(
            f"{what} {url!r} refers to a secret; put ${{secrets...}} in params= or headers= "
            "(or use auth=), never in the URL itself"
        )
    if parts.password is not None:
        raise DefinitionError(
            f"{what} {redact_url(url)!r} carries a password; keep credentials out of URLs: "
            "put them in a secret and pass auth=rest.basic(), secret='<name>'"
        )


def _slug(url: str) -> str:
    path = urlsplit(re.sub(r"\{[^{}]*\}", "", url)).path
    segments = [s for s in path.split("/") if s and s not in ("api", "v1", "v2", "v3")]
    text = "_".join(segments[-2:]) or (urlsplit(url).hostname or "api")
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "api"


def redact_url(url: str, extra: frozenset[str] | set[str] = frozenset()) -> str:
    """``url`` with credentials replaced by ``***``: userinfo passwords and the values of query
    parameters such as api_key, token, access_token, password (plus ``extra`` names).

    >>> redact_url("https://bob:pw@h.test/a?api_key=123&page=2&Token=x")
    'https://***@h.test/a?api_key=***&page=2&Token=***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        # A bare user name may be a token (https://TOKEN@host): hide all of the userinfo.
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        names = {n.lower() for n in extra} | SENSITIVE_PARAMS
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in names for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in names else v) for k, v in pairs], safe="*{}"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
