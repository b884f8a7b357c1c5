"""Which input column holds which identifier type: flags, default names, well-known names.

Every name shown in a message passes :func:`.sources.looks_like_data` first: a headerless
file's first row would otherwise be printed as its "column names".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.segment.sources import looks_like_data

__all__ = ["COLUMN_ALIASES", "column_label", "resolve_columns"]

_DEFAULT_NAMES = {
    IdentifierType.EMAIL: "email",
    IdentifierType.PHONE: "phone",
    IdentifierType.DEVICE_ID: "device_id",
}
COLUMN_ALIASES: dict[IdentifierType, tuple[str, ...]] = {
    IdentifierType.EMAIL: ("email", "e-mail", "email_address", "Email Address", "mail"),
    IdentifierType.PHONE: (
        "phone",
        "mobile",
        "mobile_number",
        "phone_number",
        "cell",
        "msisdn",
        "telephone",
    ),
    IdentifierType.DEVICE_ID: (
        "device_id",
        "idfa",
        "gaid",
        "maid",
        "aaid",
        "advertising_id",
        "ad_id",
        "mobile_ad_id",
    ),
}
"""Header names taken for a type when its flag is not given and its default name is absent:
matched ignoring case, spaces, underscores and hyphens ("E-Mail", "Phone Number", "IDFA")."""
_FLAGS = {
    IdentifierType.EMAIL: "--email-column",
    IdentifierType.PHONE: "--phone-column",
    IdentifierType.DEVICE_ID: "--device-id-column",
}


def column_label(name: str, position: int) -> str:
    """How a column may appear in messages and reports: its name, unless that looks like data.

    A file without a header row makes its first data row the "column names": such names are
    shown by position only, never as text.
    """
    return f"column {position}" if looks_like_data(name) else name


def _listing(columns: list[str]) -> str:
    shown = ", ".join(
        repr(label) if label == name else label
        for name, label in ((c, column_label(c, i)) for i, c in enumerate(columns[:20], 1))
    )
    return shown + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")


def _header_hint(columns: list[str]) -> str:
    if any(looks_like_data(c) for c in columns):
        return " The first row looks like data, not a header: add a header row naming the columns."
    return ""


def _folded(name: str) -> str:
    """A header name as aliases are matched: no case, spaces, underscores or hyphens."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


_BY_ALIAS = {_folded(a): kind for kind, names in COLUMN_ALIASES.items() for a in names}


def _by_alias(source_name: str, available: list[str], kind: IdentifierType) -> str | None:
    """The one column whose name is a well-known name for ``kind``; InputError if several."""
    found = [
        (number, name)
        for number, name in enumerate(available, 1)
        if _BY_ALIAS.get(_folded(name)) is kind
    ]
    if len(found) > 1:
        listed = ", ".join(
            repr(label) if label == name else label
            for label, name in ((column_label(n, i), n) for i, n in found)
        )
        raise InputError(
            f"{source_name}: {len(found)} columns could hold {kind.key} identifiers ({listed}); "
            f"name the one to use with {_FLAGS[kind]}"
        )
    return found[0][1] if found else None


def resolve_columns(
    source_name: str, available: list[str], requested: Mapping[IdentifierType, str]
) -> dict[IdentifierType, str]:
    """Map identifier types to input columns: as requested, else by default name, else by
    a well-known name (:data:`COLUMN_ALIASES`).

    Names match exactly first, then case-insensitively when that is unambiguous. Two columns
    that could both be a type's (``Email`` and ``E-mail``) are refused, naming both.
    """
    by_folded: dict[str, list[str]] = {}
    for name in available:
        by_folded.setdefault(name.casefold(), []).append(name)

    def find(name: str) -> str | None:
        if name in available:
            return name
        matches = by_folded.get(name.casefold(), [])
        return matches[0] if len(matches) == 1 else None

    resolved: dict[IdentifierType, str] = {}
    for kind in IdentifierType:
        if kind in requested:
            found = find(requested[kind])
            if found is None:
                asked = column_label(requested[kind], 0)
                raise InputError(
                    f"{source_name}: no column {asked!r} ({_FLAGS[kind]}); "
                    f"columns are {_listing(available)}.{_header_hint(available)}"
                )
            resolved[kind] = found
        elif found := find(_DEFAULT_NAMES[kind]) or _by_alias(source_name, available, kind):
            resolved[kind] = found
    if not resolved:
        raise InputError(
            f"{source_name}: no identifier column found; columns are {_listing(available)}. "
            "Name one with --email-column, --phone-column or --device-id-column."
            + _header_hint(available)
        )
    return resolved
