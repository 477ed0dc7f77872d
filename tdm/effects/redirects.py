"""The redirect policy of REST effects: credentials never follow a redirect to another origin.

tdm follows redirects itself (never httpx), hop by hop, so it decides what each hop carries:

* ``redirects="same-origin"`` (the default): a redirect within the origin of the request
  (scheme, host and port; ``http`` to ``https`` on the same host counts as the same origin)
  is followed with every header, the auth and the secret-filled query values. A redirect to
  another origin fails with an error naming both origins.
* ``redirects="any"``: a redirect to another origin is followed *without* any credential:
  no ``Authorization``/``Cookie`` header, no auth header or query value (basic, bearer,
  api_key, OAuth2), no header or query value filled from a secret, and no parameter of the
  new URL that carries a known secret value. Once a chain has left the origin it stays
  without credentials, even if it comes back.

A 303 (and a 301/302 answering a POST) turns into a GET without a body; 307 and 308 resend
the method and the body, which is refused across origins when the body holds a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

__all__ = [
    "MAX_REDIRECTS",
    "POLICIES",
    "REDIRECT_STATUSES",
    "Policy",
    "origin",
    "redirect_method",
    "same_origin",
    "show_origin",
    "strip_query",
    "target",
    "without",
]

Policy: TypeAlias = Literal["same-origin", "any"]
_Check: TypeAlias = Callable[[str], bool]
POLICIES: Final = ("same-origin", "any")
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 20
ALWAYS_CREDENTIALS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Headers that are credentials whatever their value's origin."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http and https.

    >>> origin("https://API.example.com/v1?x=1"), origin("http://127.0.0.1:8080/")
    (('https', 'api.example.com', 443), ('http', '127.0.0.1', 8080))
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def same_origin(first: str, then: str) -> bool:
    """Whether a redirect from ``first`` to ``then`` stays within the origin of ``first``
    (the upgrade from ``http`` to ``https`` on the default ports of one host included).

    >>> same_origin("http://127.0.0.1:5000/a", "http://127.0.0.1:5000/b?page=2")
    True
    >>> same_origin("http://127.0.0.1:5000/a", "http://localhost:5000/a")
    False
    >>> same_origin("http://h.test/a", "https://h.test/a"), same_origin("https://h.test", "http://h.test")
    (True, False)
    """
    a, b = origin(first), origin(then)
    if a == b:
        return True
    return a == ("http", b[1], 80) and b == ("https", a[1], 443)


def show_origin(url: str) -> str:
    """The origin of ``url`` for a message: scheme, host and port, never a path or query.

    >>> show_origin("http://localhost:5001/x?api_key=1")
    'http://localhost:5001'
    """
    scheme, host, port = origin(url)
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        shown += f":{port}"
    return f"{scheme}://{shown}"


def target(current: str, location: str) -> str:
    """The absolute URL a ``Location`` header points to (relative to ``current``).

    >>> target("http://h.test/a/b?x=1", "../c")
    'http://h.test/c'
    """
    return urljoin(current, location.strip())


def redirect_method(method: str, status: int) -> tuple[str, bool]:
    """The method of the next hop, and whether it resends the body (as browsers and httpx do).

    >>> redirect_method("POST", 302), redirect_method("POST", 307), redirect_method("HEAD", 303)
    (('GET', False), ('POST', True), ('HEAD', False))
    """
    method = method.upper()
    if status == 303 and method != "HEAD":
        return "GET", False
    if status in (301, 302) and method == "POST":
        return "GET", False
    return method, status in (307, 308)


def strip_query(url: str, names: Collection[str], holds_secret: _Check) -> str:
    """``url`` without the query parameters named in ``names`` (any case) or whose value
    ``holds_secret``.

    >>> strip_query("http://h.test/a?page=2&Key=k1&x=y", {"key"}, lambda v: v == "y")
    'http://h.test/a?page=2'
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    lowered = {n.lower() for n in names}
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in lowered and not holds_secret(v)]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


def without(
    headers: Mapping[str, str], names: Collection[str], holds_secret: _Check
) -> dict[str, str]:
    """``headers`` without the credential-bearing ones: those in ``names`` (any case), the
    ``Authorization``/``Proxy-Authorization``/``Cookie`` headers, and any whose value
    ``holds_secret``.

    >>> without({"Accept": "a/b", "X-Key": "k", "Authorization": "Basic x"}, {"x-key"},
    ...         lambda v: False)
    {'Accept': 'a/b'}
    """
    drop = {n.lower() for n in names} | ALWAYS_CREDENTIALS
    return {k: v for k, v in headers.items() if k.lower() not in drop and not holds_secret(v)}
