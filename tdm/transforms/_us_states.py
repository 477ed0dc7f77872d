"""US states, DC and territories: names, USPS codes and common abbreviations (private data)."""

from __future__ import annotations

import re
from types import MappingProxyType

_STATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (USPS code, name, other spellings: AP/GPO abbreviations and common variants)
    ("AL", "Alabama", ("ala",)),
    ("AK", "Alaska", ("alas",)),
    ("AZ", "Arizona", ("ariz",)),
    ("AR", "Arkansas", ("ark",)),
    ("CA", "California", ("calif", "cal", "cali")),
    ("CO", "Colorado", ("colo", "col")),
    ("CT", "Connecticut", ("conn",)),
    ("DE", "Delaware", ("del",)),
    ("DC", "District of Columbia", ("d c", "wash dc", "washington dc", "washington d c")),
    ("FL", "Florida", ("fla", "flor")),
    ("GA", "Georgia", ()),
    ("HI", "Hawaii", ("hawai'i",)),
    ("ID", "Idaho", ("ida",)),
    ("IL", "Illinois", ("ill", "ills")),
    ("IN", "Indiana", ("ind",)),
    ("IA", "Iowa", ()),
    ("KS", "Kansas", ("kan", "kans")),
    ("KY", "Kentucky", ("ken", "kent")),
    ("LA", "Louisiana", ()),
    ("ME", "Maine", ()),
    ("MD", "Maryland", ()),
    ("MA", "Massachusetts", ("mass",)),
    ("MI", "Michigan", ("mich",)),
    ("MN", "Minnesota", ("minn",)),
    ("MS", "Mississippi", ("miss",)),
    ("MO", "Missouri", ()),
    ("MT", "Montana", ("mont",)),
    ("NE", "Nebraska", ("neb", "nebr")),
    ("NV", "Nevada", ("nev",)),
    ("NH", "New Hampshire", ("n h",)),
    ("NJ", "New Jersey", ("n j",)),
    ("NM", "New Mexico", ("n m", "n mex", "new mex")),
    ("NY", "New York", ("n y", "n york")),
    ("NC", "North Carolina", ("n c", "n car", "no carolina")),
    ("ND", "North Dakota", ("n d", "n dak", "no dakota")),
    ("OH", "Ohio", ()),
    ("OK", "Oklahoma", ("okla",)),
    ("OR", "Oregon", ("ore", "oreg")),
    ("PA", "Pennsylvania", ("pa", "penn", "penna")),
    ("RI", "Rhode Island", ("r i",)),
    ("SC", "South Carolina", ("s c", "s car", "so carolina")),
    ("SD", "South Dakota", ("s d", "s dak", "so dakota")),
    ("TN", "Tennessee", ("tenn",)),
    ("TX", "Texas", ("tex",)),
    ("UT", "Utah", ()),
    ("VT", "Vermont", ()),
    ("VA", "Virginia", ()),
    ("WA", "Washington", ("wash",)),
    ("WV", "West Virginia", ("w va", "w virginia")),
    ("WI", "Wisconsin", ("wis", "wisc")),
    ("WY", "Wyoming", ("wyo",)),
    ("AS", "American Samoa", ()),
    ("GU", "Guam", ()),
    ("MP", "Northern Mariana Islands", ("n mariana islands",)),
    ("PR", "Puerto Rico", ("p r",)),
    ("VI", "U.S. Virgin Islands", ("us virgin islands", "virgin islands")),
)

_SPACES = re.compile(r"[\s._\-,]+")


def normalize_key(text: str) -> str:
    """The lookup key of a spelling: lower case, dots/dashes/commas as spaces, trimmed."""
    return _SPACES.sub(" ", text.lower().replace("\u2019", "'")).strip()


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, name, others in _STATES:
        for spelling in (code, name, *others):
            table[normalize_key(spelling)] = code
    return table


LOOKUP: MappingProxyType[str, str] = MappingProxyType(_table())
"""Normalized spelling -> USPS code."""

US_STATE_CODES: MappingProxyType[str, str] = MappingProxyType(
    {name: code for code, name, _ in _STATES}
)
"""Name -> USPS code, e.g. ``US_STATE_CODES["Texas"] == "TX"`` (50 states, DC, territories)."""
