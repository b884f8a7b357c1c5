"""Which input columns hold which identifier type: flags, else well-known names in many languages.

Exports name their columns in the language of whoever set up the CRM (``E-Mail``, ``Telefon``,
``Téléphone``, ``Móvil``) and often carry several columns of a type (HubSpot's ``Phone Number``
and ``Mobile Phone Number``): detection takes every column whose name is a well-known name of
a type, so no valid value is left behind. Names match ignoring case, accents, spaces and
punctuation. Columns named as digests (``email_sha256``, ``hashed_phone``) are pre-hashed
columns of their type: a value there that is not 64 hex digits is rejected as ``not_a_hash``.

Every name shown in a message passes :func:`.sources.looks_like_data` first: a headerless
file's first row would otherwise be printed as its "column names".
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping, Sequence

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.segment.sources import looks_like_data

__all__ = [
    "COLUMN_ALIASES",
    "COUNTRY_ALIASES",
    "HASHED_ALIASES",
    "ColumnRequest",
    "column_label",
    "folded",
    "is_hashed_column",
    "resolve_column_lists",
    "resolve_columns",
    "resolve_country_column",
]

#: A type's columns as asked for: one name or several.
ColumnRequest = str | Sequence[str]

COLUMN_ALIASES: dict[IdentifierType, tuple[str, ...]] = {
    IdentifierType.EMAIL: (
        "email", "e-mail", "email_address", "Email Address", "mail", "E-Mail-Adresse",
        "Mailadresse", "Courriel", "adresse e-mail", "Adresse email", "Correo",
        "correo electrónico", "email personal", "indirizzo email", "posta elettronica",
        "e-post", "sähköposti", "customer email", "contact email", "primary email",
    ),
    IdentifierType.PHONE: (
        "phone", "mobile", "mobile_number", "phone_number", "cell", "msisdn", "telephone",
        "Mobile Phone", "Mobile Phone Number", "Work Phone", "Home Phone", "Other Phone",
        "cell phone", "Default Address Phone", "Billing Phone", "Shipping Phone", "tel",
        "Telefon", "Telefonnummer", "Handy", "Handynummer", "Mobil", "Mobilnummer",
        "Mobiltelefon", "Téléphone", "Portable", "Téléphone portable", "numéro de téléphone",
        "Teléfono", "Móvil", "Celular", "número de teléfono", "Cellulare", "Telefono",
        "numero di telefono", "Telefone", "Telemóvel", "telefoonnummer", "mobiel",
    ),
    IdentifierType.DEVICE_ID: (
        "device_id", "idfa", "gaid", "maid", "aaid", "advertising_id", "ad_id", "mobile_ad_id",
    ),
}  # fmt: skip
"""Header names taken for a type when its flag is not given: every column named so is read."""

_HASH_STEMS = {
    IdentifierType.EMAIL: ("email", "mail", "emailaddress"),
    IdentifierType.PHONE: ("phone", "phonenumber", "mobile", "msisdn"),
    IdentifierType.DEVICE_ID: ("deviceid", "maid", "idfa", "gaid"),
}
HASHED_ALIASES: dict[IdentifierType, tuple[str, ...]] = {
    kind: tuple(
        form
        for stem in stems
        for form in (
            f"{stem}sha256", f"sha256{stem}", f"hashed{stem}", f"{stem}hash", f"{stem}hashed",
            f"{stem}sha256hash", f"sha256hashed{stem}",
        )
    )
    for kind, stems in _HASH_STEMS.items()
}  # fmt: skip
"""Folded names of pre-hashed columns (``EMAIL_SHA256``, ``hashed_phone``, ``email_hash``)."""

COUNTRY_ALIASES: tuple[str, ...] = (
    "country", "country_code", "Country/Region", "Country Code", "Default Address Country Code",
    "Default Address Country", "Billing Country", "Billing Country Code", "Mailing Country",
    "Mailing Country Code", "Shipping Country", "Shipping Country Code", "country_iso",
    "Land", "Ländercode", "Pays", "Code pays", "País", "Paese", "País/Região", "Landcode",
)  # fmt: skip
"""Header names of a column holding each row's country (for phones in national format)."""

_FLAGS = {
    IdentifierType.EMAIL: "--email-column",
    IdentifierType.PHONE: "--phone-column",
    IdentifierType.DEVICE_ID: "--device-id-column",
}


def folded(name: str) -> str:
    """A header name as aliases are matched: no case, accents, spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", bare).casefold()


_BY_ALIAS = {folded(a): kind for kind, names in COLUMN_ALIASES.items() for a in names}
_BY_ALIAS.update({a: kind for kind, names in HASHED_ALIASES.items() for a in names})
_HASHED = {a for names in HASHED_ALIASES.values() for a in names}
_COUNTRY = {folded(a) for a in COUNTRY_ALIASES}


def is_hashed_column(name: str) -> bool:
    """Whether a name says the column holds SHA-256 digests (``email_sha256``)."""
    return folded(name) in _HASHED


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


def _advice(columns: list[str]) -> str:
    """A flag to name a column with, quoted so that a shell passes the name as it is."""
    names = [c for c in columns if c and not looks_like_data(c)]
    example = f", e.g. --email-column {shlex.quote(names[0])}" if names else ""
    return f"Name one with --email-column, --phone-column or --device-id-column{example}."


def _detected(source_name: str, available: list[str], kind: IdentifierType) -> list[str]:
    """Every column whose name is a well-known name for ``kind``, in file order.

    Two columns whose names differ only in case, accents, spaces or punctuation (``Email``
    and ``E-mail``) are refused: which one a person meant is not for us to guess.
    """
    found = [
        (number, name)
        for number, name in enumerate(available, 1)
        if _BY_ALIAS.get(folded(name)) is kind
    ]
    seen: dict[str, tuple[int, str]] = {}
    for number, name in found:
        first = seen.setdefault(folded(name), (number, name))
        if first[0] != number:
            listed = ", ".join(
                repr(label) if label == n else label
                for label, n in ((column_label(n, i), n) for i, n in (first, (number, name)))
            )
            raise InputError(
                f"{source_name}: 2 columns could hold {kind.key} identifiers ({listed}); "
                f"name the ones to use with {_FLAGS[kind]}"
            )
    return [name for _, name in found]


def resolve_column_lists(
    source_name: str, available: list[str], requested: Mapping[IdentifierType, ColumnRequest]
) -> dict[IdentifierType, list[str]]:
    """Map identifier types to their input columns: as requested, else every column with a
    well-known name for the type (:data:`COLUMN_ALIASES`, :data:`HASHED_ALIASES`).

    A requested name matches exactly first, then case-insensitively when that is unambiguous.
    """
    by_folded: dict[str, list[str]] = {}
    for name in available:
        by_folded.setdefault(name.casefold(), []).append(name)

    def find(name: str) -> str | None:
        if name in available:
            return name
        matches = by_folded.get(name.casefold(), [])
        return matches[0] if len(matches) == 1 else None

    resolved: dict[IdentifierType, list[str]] = {}
    for kind in IdentifierType:
        if kind in requested:
            asked = requested[kind]
            names = [asked] if isinstance(asked, str) else list(asked)
            chosen = []
            for name in names:
                found = find(name)
                if found is None:
                    raise InputError(
                        f"{source_name}: no column {column_label(name, 0)!r} ({_FLAGS[kind]}); "
                        f"columns are {_listing(available)}.{_header_hint(available)}"
                    )
                chosen.append(found)
            resolved[kind] = list(dict.fromkeys(chosen))
        elif found_all := _detected(source_name, available, kind):
            resolved[kind] = found_all
    if not resolved:
        raise InputError(
            f"{source_name}: no identifier column found; columns are {_listing(available)}. "
            + _advice(available)
            + _header_hint(available)
        )
    return resolved


def resolve_columns(
    source_name: str, available: list[str], requested: Mapping[IdentifierType, ColumnRequest]
) -> dict[IdentifierType, str]:
    """The first column of each type (:func:`resolve_column_lists`), for readers of one."""
    lists = resolve_column_lists(source_name, available, requested)
    return {kind: names[0] for kind, names in lists.items()}


def resolve_country_column(
    source_name: str, available: list[str], requested: str | None
) -> str | None:
    """The column holding each row's country: as requested, else the first with a well-known
    name (:data:`COUNTRY_ALIASES`), else None."""
    if requested is not None:
        if requested in available:
            return requested
        matches = [c for c in available if c.casefold() == requested.casefold()]
        if len(matches) == 1:
            return matches[0]
        raise InputError(
            f"{source_name}: no column {column_label(requested, 0)!r} (--country-column); "
            f"columns are {_listing(available)}.{_header_hint(available)}"
        )
    return next((c for c in available if folded(c) in _COUNTRY), None)
