"""Finding a secret value in text, in every form it is rendered in.

A value rarely travels as itself. A server echoes it JSON-escaped (``a\\/b``, ``\\"``,
``\\u00e9``, escaped again when that JSON sits in a JSON log line or the audit store); ``repr``
doubles its backslashes; a URL percent-encodes it, in upper or lower case, sometimes twice;
a form body turns its spaces into ``+``; HTML escapes ``&<>"'``; an ``Authorization`` header
carries it Base64-encoded; a PEM key is cut into lines. :func:`pattern` turns one value into
one regular expression matching all of these renderings (and any mix of them, character by
character), built once per value; :class:`Scrubber` joins the patterns of every known value
into one compiled alternation, rebuilt only when a new value is registered.

Values shorter than :data:`MIN_LENGTH` characters are not scrubbed: ``42`` or a user name like
``tdm`` would be cut out of every message that happens to hold those characters, and a value
that short hides nothing. The secrets providers log a warning for each such value instead.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Final

__all__ = ["MIN_LENGTH", "REDACTED", "Scrubber", "forms", "pattern"]

REDACTED: Final = "***"
MIN_LENGTH: Final = 4
"""Values at least this long are scrubbed; shorter ones are not (and are warned about)."""

# Characters no renderer escapes: URLs, JSON, repr and HTML all leave them as they are.
_PLAIN: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
_REPR_ESCAPES: Final = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}
_HTML_NAMES: Final = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}


def _hex(number: int, width: int) -> str:
    """``number`` in hex as a pattern that matches either case (``%2f`` and ``%2F``)."""
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char(c: str) -> str:
    """A pattern for one character in any rendering: itself, escaped by any number of
    backslashes (JSON ``\\"``, ``\\/``, repr ``\\\\``), as ``\\xHH``/``\\uHHHH``/``\\UHHHHHHHH``,
    percent-encoded (UTF-8, either case, or encoded twice as ``%25HH``), ``+`` for a space,
    or an HTML entity."""
    if c in _PLAIN:
        return re.escape(c)
    cp = ord(c)
    options = [r"\\*" + re.escape(c)]
    if c in _REPR_ESCAPES:
        options.append(r"\\+" + _REPR_ESCAPES[c])
    if cp < 0x100:
        options.append(r"\\+x" + _hex(cp, 2))
    if cp < 0x10000:
        options.append(r"\\+u" + _hex(cp, 4))
    else:
        high, low = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        options.append(r"\\+u" + _hex(high, 4) + r"\\+u" + _hex(low, 4))
        options.append(r"\\+U" + _hex(cp, 8))
    options.append("".join("%(?:25)?" + _hex(b, 2) for b in c.encode("utf-8", "surrogatepass")))
    if c == " ":
        options.append(r"\+")
    if c in _HTML_NAMES:
        options.append(f"&{_HTML_NAMES[c]};")
    options.append(f"&#0*{cp};")
    options.append(f"&#[xX]0*{_hex(cp, 1)};")
    return "(?:" + "|".join(options) + ")"


def forms(value: str) -> list[str]:
    """The forms of ``value`` that are matched on their own: the value, its Base64 encodings
    (standard and URL-safe, padding optional) and, for a multi-line value, each of its lines
    (a PEM key is often shown one line at a time). Short forms are left out.

    >>> forms("tok/en?")
    ['tok/en?', 'dG9rL2VuPw', 'dG9rL2VuPw']
    >>> forms("line one\\nline two")[3:]
    ['line one', 'line two']
    """
    if len(value) < MIN_LENGTH:
        return []
    out = [value]
    raw = value.encode("utf-8", "surrogatepass")
    out.append(base64.b64encode(raw).decode("ascii").rstrip("="))
    out.append(base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="))
    lines = [line.strip() for line in value.splitlines()]
    if len(lines) > 1:
        out += [line for line in lines if len(line) >= MIN_LENGTH]
    return out


def _anchor(form: str) -> str:
    """The longest run of characters that every rendering of ``form`` keeps as they are: a
    text without it cannot hold ``form`` (a cheap test before any regular expression)."""
    runs = re.findall(r"[A-Za-z0-9\-_.~]+", form)
    return max(runs, key=len) if runs else ""


def _patterns(value: str) -> list[tuple[str, str]]:
    """``(anchor, pattern)`` of each form of ``value``."""
    unique = dict.fromkeys(forms(value))
    return [(_anchor(form), "".join(map(_char, form))) for form in unique]


def pattern(value: str) -> str:
    """A regular expression matching ``value`` in every rendering (see the module docstring).

    >>> import re
    >>> rx = re.compile(pattern('p/w"1 ok'))
    >>> [bool(rx.search(t)) for t in ('p/w"1 ok', r'p\\/w\\"1 ok', 'p%2fw%221+ok', 'cC93IjEgb2s=')]
    [True, True, True, True]
    """
    return "|".join(p for _, p in _patterns(value))


class Scrubber:
    """Every registered secret value, and the compiled patterns that find any of them.

    A text is first searched for the anchors of all forms at once (one alternation of plain
    literals: a clean text costs no more than that); only the forms whose anchor it holds go
    into the regular expression, compiled once per such set of forms.

    >>> s = Scrubber()
    >>> s.add("hunter2/x")
    True
    >>> s.scrub('{"error": "bad key hunter2\\\\/x"}')
    '{"error": "bad key ***"}'
    """

    _CACHE_SIZE: Final = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        # (value length, anchor, pattern), longest value first: where two values overlap,
        # the longer one is removed whole. Replaced whole, with its gate, on every add.
        self._table: tuple[tuple[tuple[int, str, str], ...], re.Pattern[str] | None] = ((), None)
        self._compiled: dict[tuple[int, ...], re.Pattern[str]] = {}

    def add(self, value: str) -> bool:
        """Register ``value`` (one shorter than :data:`MIN_LENGTH` is ignored); True when it
        was new."""
        if len(value) < MIN_LENGTH or value in self._values:
            return False
        made = [(len(value), anchor, p) for anchor, p in _patterns(value)]
        with self._lock:
            if value in self._values:
                return False
            entries = tuple(sorted([*self._table[0], *made], key=lambda e: e[0], reverse=True))
            anchors = sorted({a for _, a, _ in entries}, key=len, reverse=True)
            # A form without an anchor (a value of punctuation only) must always be tried.
            gate = re.compile("|".join(map(re.escape, anchors))) if all(anchors) else None
            self._table, self._compiled = (entries, gate), {}
            self._values = self._values | {value}
        return True

    def values(self) -> frozenset[str]:
        """The registered values."""
        return self._values

    def __bool__(self) -> bool:
        return bool(self._values)

    def _regex(
        self, entries: tuple[tuple[int, str, str], ...], text: str
    ) -> re.Pattern[str] | None:
        active = tuple(i for i, (_, anchor, _) in enumerate(entries) if anchor in text)
        if not active:
            return None
        compiled = self._compiled.get(active)
        if compiled is None:
            compiled = re.compile("|".join(f"(?:{entries[i][2]})" for i in active))
            with self._lock:
                if entries is self._table[0]:  # not stale: no value was added meanwhile
                    if len(self._compiled) >= self._CACHE_SIZE:
                        self._compiled.clear()
                    self._compiled[active] = compiled
        return compiled

    def scrub(self, text: str) -> str:
        """``text`` with every rendering of every registered value replaced by ``***``."""
        entries, gate = self._table
        if not text or not entries or (gate is not None and gate.search(text) is None):
            return text
        regex = self._regex(entries, text)
        return text if regex is None else regex.sub(REDACTED, text)
