"""Identifier rules: normalize, validate and SHA-256 each identifier type as polars expressions.

Pure data logic: no I/O, nothing logged, no HTTP. Normalization is defined once, here, in one
engine (polars), because engines disagree at the edges (Python's ``str.strip`` also strips
``\\x1c``-``\\x1f``; DuckDB lowercases ``İ`` differently). Every value ends in exactly one
*status*: ``hashed`` (normalized then hashed here), ``prehashed`` (already a SHA-256 hex digest,
passed through lowercased), or the reason it was rejected.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace)

from spotify_audience_sync.phones import PHONE_REASONS, PhoneValidation, normalize_phones

__all__ = [
    "REJECT_REASONS",
    "IdentifierType",
    "NormalizeOptions",
    "hash_column",
    "normalize_batch",
    "normalize_values",
    "status_column",
]


class IdentifierType(enum.Enum):
    """The identifier types Spotify matches on; values are the wire names in the upload file."""

    EMAIL = "EMAIL_ID_SHA256"
    PHONE = "PHONE_NUMBER_SHA256"
    DEVICE_ID = "DEVICE_ID_SHA256"

    @property
    def key(self) -> str:
        """Short lowercase name used for columns, flags and report keys."""
        return self.name.lower()


HASHED = "hashed"
PREHASHED = "prehashed"

#: Rejection reasons per type, in report order. ``empty`` is a blank or missing cell.
REJECT_REASONS: dict[IdentifierType, tuple[str, ...]] = {
    IdentifierType.EMAIL: ("empty", "malformed"),
    IdentifierType.PHONE: PHONE_REASONS,
    IdentifierType.DEVICE_ID: ("empty", "malformed", "zeroed"),
}

_SHA256_HEX = r"^[0-9a-fA-F]{64}$"
# One @, a non-empty local part, a dotted domain of non-empty labels; no whitespace, control or
# format characters anywhere (zero-width spaces would silently change the hash).
_EMAIL = r"^[^@\s\p{Cc}\p{Cf}]+@[^@\s\p{Cc}\p{Cf}.]+(\.[^@\s\p{Cc}\p{Cf}.]+)+$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """How identifiers are normalized; the defaults are what Spotify's partners document."""

    gmail_canonical: bool = False
    default_region: str = "US"
    phone_validation: PhoneValidation = "valid"


def _sha256(value: pl.Expr) -> pl.Expr:
    """Vectorized SHA-256 hex of the UTF-8 bytes (polars-hash; matches hashlib)."""
    digest: pl.Expr = value.chash.sha2_256()  # type: ignore[attr-defined]
    return digest


def hash_column(kind: IdentifierType) -> str:
    """Name of the column holding a type's lowercase SHA-256 hex (null when rejected)."""
    return f"{kind.key}_sha256"


def status_column(kind: IdentifierType) -> str:
    """Name of the column holding a type's status: hashed, prehashed or a rejection reason."""
    return f"{kind.key}_status"


def _email_normalized(value: pl.Expr, gmail_canonical: bool) -> pl.Expr:
    email = value.str.strip_chars().str.to_lowercase()
    if not gmail_canonical:
        return email
    local = email.str.extract(r"^([^@]*)@", 1)
    domain = email.str.extract(r"@([^@]*)$", 1)
    canonical_local = local.str.replace(r"\+.*$", "").str.replace_all(".", "", literal=True)
    return (
        pl.when(domain.is_in(_GMAIL_DOMAINS) & (email.str.count_matches("@", literal=True) == 1))
        .then(pl.concat_str(canonical_local, pl.lit("@"), domain))
        .otherwise(email)
    )


def _finish(
    kind: IdentifierType, stripped: pl.Expr, normalized: pl.Expr, reason: pl.Expr
) -> list[pl.Expr]:
    """Shared tail: empty and pre-hashed detection, then hash what stayed valid."""
    is_empty = stripped.is_null() | (stripped == "")
    is_prehashed = stripped.str.contains(_SHA256_HEX)
    status = (
        pl.when(is_empty)
        .then(pl.lit("empty"))
        .when(is_prehashed)
        .then(pl.lit(PREHASHED))
        .otherwise(reason.fill_null(pl.lit(HASHED)))
    )
    digest = (
        pl.when(is_empty)
        .then(pl.lit(None, pl.String))
        .when(is_prehashed)
        .then(stripped.str.to_lowercase())
        .when(reason.is_null())
        .then(_sha256(normalized))
        .otherwise(pl.lit(None, pl.String))
    )
    return [digest.alias(hash_column(kind)), status.alias(status_column(kind))]


def _email_exprs(column: str, options: NormalizeOptions) -> list[pl.Expr]:
    stripped = pl.col(column).cast(pl.String).str.strip_chars()
    normalized = _email_normalized(pl.col(column).cast(pl.String), options.gmail_canonical)
    reason = pl.when(normalized.str.contains(_EMAIL)).then(None).otherwise(pl.lit("malformed"))
    return _finish(IdentifierType.EMAIL, stripped, normalized, reason)


def _device_exprs(column: str) -> list[pl.Expr]:
    stripped = pl.col(column).cast(pl.String).str.strip_chars()
    normalized = stripped.str.to_lowercase()
    reason = (
        pl.when(~normalized.str.contains(_UUID))
        .then(pl.lit("malformed"))
        .when(normalized == _ZERO_UUID)
        .then(pl.lit("zeroed"))
        .otherwise(None)
    )
    return _finish(IdentifierType.DEVICE_ID, stripped, normalized, reason)


def _phone_columns(values: pl.Series, options: NormalizeOptions) -> list[pl.Series]:
    """Phones leave the expression world: libphonenumber rules run on the distinct values."""
    stripped = values.cast(pl.String).str.strip_chars()
    needs_parse = ~(stripped.is_null() | (stripped == "") | stripped.str.contains(_SHA256_HEX))
    parsed = normalize_phones(
        stripped.filter(needs_parse),
        default_region=options.default_region,
        validation=options.phone_validation,
    )
    frame = pl.DataFrame({"stripped": stripped, "needs_parse": needs_parse}).with_columns(
        e164=pl.lit(None, pl.String), reason=pl.lit(None, pl.String)
    )
    if parsed.height:
        positions = frame.select(pl.arg_where(pl.col("needs_parse"))).to_series()
        frame = frame.with_columns(
            frame["e164"].scatter(positions, parsed["e164"]),
            frame["reason"].scatter(positions, parsed["reason"]),
        )
    return frame.select(
        _finish(IdentifierType.PHONE, pl.col("stripped"), pl.col("e164"), pl.col("reason"))
    ).get_columns()


def normalize_batch(
    batch: pl.DataFrame,
    columns: Mapping[IdentifierType, str],
    options: NormalizeOptions,
) -> pl.DataFrame:
    """Turn one batch of raw rows into a hash column and a status column per mapped type.

    ``columns`` maps each identifier type present in the input to its column in ``batch``.
    The result has one row per input row, so row-level layouts (``wide``) keep people together.
    """
    exprs: list[pl.Expr] = []
    if IdentifierType.EMAIL in columns:
        exprs += _email_exprs(columns[IdentifierType.EMAIL], options)
    if IdentifierType.DEVICE_ID in columns:
        exprs += _device_exprs(columns[IdentifierType.DEVICE_ID])
    out = batch.lazy().select(exprs).collect() if exprs else pl.DataFrame(height=batch.height)
    if IdentifierType.PHONE in columns:
        out = out.with_columns(_phone_columns(batch[columns[IdentifierType.PHONE]], options))
    ordered = [c for kind in IdentifierType if kind in columns for c in _names(kind)]
    return out.select(ordered)


def _names(kind: IdentifierType) -> tuple[str, str]:
    return hash_column(kind), status_column(kind)


def normalize_values(
    kind: IdentifierType, values: list[str | None], options: NormalizeOptions | None = None
) -> list[tuple[str | None, str]]:
    """Convenience for tests and one-off checks: ``(sha256 or None, status)`` per value."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    out = normalize_batch(frame, {kind: "v"}, options or NormalizeOptions())
    return list(
        zip(out[hash_column(kind)].to_list(), out[status_column(kind)].to_list(), strict=True)
    )
