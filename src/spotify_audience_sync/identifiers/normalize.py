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
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers import emails
from spotify_audience_sync.identifiers.hashing import (
    EMAIL_DEFER,
    Matrix,
    email_kernel,
    hex_matrix,
    sha256_hex,
    sha256_matrix,
)
from spotify_audience_sync.identifiers.phones import native as phones_native
from spotify_audience_sync.identifiers.phones.country import RowRegions, row_regions
from spotify_audience_sync.identifiers.phones.normalize import (
    PHONE_REASONS,
    PhoneValidation,
    normalize_phones,
)

__all__ = [
    "FALLBACK_COLUMN",
    "HASHED",
    "PREHASHED",
    "REJECT_REASONS",
    "STATUS",
    "EmailParts",
    "Extra",
    "HashedBatch",
    "Hashes",
    "IdentifierType",
    "NormalizeOptions",
    "digests",
    "email_identifiers",
    "email_parts",
    "hash_batch",
    "hash_frame",
    "normalize_batch",
    "normalize_values",
    "sha256_hex",
    "status_column",
    "value_column",
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
    IdentifierType.EMAIL: ("empty", "malformed", "too_long"),
    IdentifierType.PHONE: (*PHONE_REASONS, "scientific_notation"),
    IdentifierType.DEVICE_ID: ("empty", "malformed", "zeroed"),
}

#: Every status a value can end in, as one polars Enum: cheap to compare and to count.
STATUS = pl.Enum(
    list(dict.fromkeys([HASHED, PREHASHED, *(r for rs in REJECT_REASONS.values() for r in rs)]))
)

_SHA256_HEX = r"^[0-9a-fA-F]{64}$"
# One @, a non-empty local part, a dotted domain of non-empty labels; no whitespace, control or
# format characters anywhere (zero-width spaces would silently change the hash), and none of
# the characters an address holds only quoted or in a list (what the repairs could not undo).
_NOT = r'@\s\p{Cc}\p{Cf}<>"(),:;\[\]\\'
_EMAIL = rf"^[^{_NOT}]+@[^{_NOT}.]+(\.[^{_NOT}.]+)+$"
#: RFC 5321's limits: a longer address cannot be delivered, so it cannot be anyone's.
MAX_EMAIL_CHARS = 254
MAX_LOCAL_PART_CHARS = 64
# A number a spreadsheet wrote in scientific notation (4.15555E+09): its digits are gone.
_SCIENTIFIC = r"^\+?\d+(?:[.,]\d+)?[eE][+-]?\d+$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
#: True where libphonenumber itself decided a phone (the vectorized rules could not).
FALLBACK_COLUMN = "phone_fallback"


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """How identifiers are normalized; the defaults are what Spotify's partners document."""

    gmail_canonical: bool = False
    default_region: str = "US"
    phone_validation: PhoneValidation = "valid"
    country_column: str | None = None
    """A column holding each row's country (see ``phones.country``): its phones written without
    a country code use that country instead of ``default_region``."""


#: Each status's code (its index in :data:`STATUS`); the C email kernel writes the same codes.
CODES = {name: i for i, name in enumerate(STATUS.categories.to_list())}
if [CODES[HASHED], CODES[PREHASHED], CODES["empty"], CODES["malformed"]] != [0, 1, 2, 3]:
    raise RuntimeError("STATUS no longer starts as the C email kernel's codes (0-3) do")


def value_column(kind: IdentifierType) -> str:
    """Name of the column holding a type's normalized value (pre-hashed: the digest).

    Meaningful only where the status is ``hashed`` or ``prehashed``; use :func:`digests`.
    """
    return f"{kind.key}_value"


def digests(frame: pl.DataFrame, kind: IdentifierType) -> pl.Series:
    """Row-aligned lowercase SHA-256 hex of a normalized batch: null where rejected."""
    value, status = pl.col(value_column(kind)), pl.col(status_column(kind))
    return frame.select(
        pl.when(status == HASHED)
        .then(sha256_hex(value))
        .when(status == PREHASHED)
        .then(value)
        .alias(kind.key)
    ).to_series()


def status_column(kind: IdentifierType) -> str:
    """Name of the column holding a type's status: hashed, prehashed or a rejection reason."""
    return f"{kind.key}_status"


def _status(name: str) -> pl.Expr:
    return pl.lit(name, STATUS)


def _email_normalized(stripped: pl.Expr, gmail_canonical: bool) -> pl.Expr:
    email = stripped.str.to_lowercase()
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


def _finish(kind: IdentifierType, frame: pl.LazyFrame, reason: pl.Expr) -> pl.LazyFrame:
    """Shared tail: empty and pre-hashed detection, and each value's final status.

    ``frame`` carries ``_s`` (stripped) and ``_n`` (normalized; for a pre-hashed value, that
    value lowercased), each materialized once as a column: polars does not reliably share
    repeated sub-expressions inside when/then chains, and recomputing them doubled the cost.
    ``reason`` is the type's own rejection reason as a :data:`STATUS`, null when valid. Hashing
    happens later, in ``encode``.
    """
    stripped = pl.col("_s")
    empty = stripped.is_null() | (stripped == "")
    prehashed = (stripped.str.len_bytes() == 64) & stripped.str.contains(_SHA256_HEX)
    return frame.select(
        pl.col("_n").alias(value_column(kind)),
        pl.when(empty)
        .then(_status("empty"))
        .when(prehashed)
        .then(_status(PREHASHED))
        .otherwise(reason.fill_null(_status(HASHED)))
        .alias(status_column(kind)),
    )


def _email_rules(pieces: pl.LazyFrame, options: NormalizeOptions) -> pl.LazyFrame:
    """The rules on repaired addresses (``_s``, stripped): value and status columns."""
    normalized = pieces.with_columns(_n=_email_normalized(pl.col("_s"), options.gmail_canonical))
    local = pl.col("_n").str.split("@").list.first()
    too_long = (pl.col("_n").str.len_chars() > MAX_EMAIL_CHARS) | (
        local.str.len_chars() > MAX_LOCAL_PART_CHARS
    )
    reason = (
        pl.when(~pl.col("_n").str.contains(_EMAIL))
        .then(_status("malformed"))
        .when(too_long)
        .then(_status("too_long"))
        .otherwise(None)
    )
    return _finish(IdentifierType.EMAIL, normalized, reason)


@dataclass(frozen=True)
class EmailParts:
    """A column of emails after the repairs and the rules.

    ``first``: row-aligned, each cell's first address (value and status columns); ``rest``:
    the further addresses of cells that held several, with their ``_row``, or None;
    ``repairs``: the cells each repair touched.
    """

    first: pl.DataFrame
    rest: pl.DataFrame | None
    repairs: dict[str, int]


def email_parts(values: pl.Series, options: NormalizeOptions) -> EmailParts:
    """The rules on every cell, and the repairs (see :mod:`.emails`) on the few that need one.

    The plain rules run on the whole column (one query, as before the repairs existed); the
    repaired cells' first addresses are scattered over their rows, which is cheaper than
    sorting the two kinds of cells back together.
    """
    stripped = values.cast(pl.String).str.strip_chars()
    first = _email_rules(pl.DataFrame({"_s": stripped}).lazy(), options).collect()
    unusual = stripped.str.contains(emails.UNUSUAL).fill_null(False)
    if not unusual.any():
        return EmailParts(first, None, {})
    rows = unusual.arg_true().cast(pl.UInt32)
    repaired = emails.pieces(stripped.filter(unusual))
    found = _with_row(repaired.lazy().select("_row", "_s"), options).collect()
    head = found["_row"].is_first_distinct()
    heads = found.filter(head)  # one per repaired cell, in cell order
    value, status = value_column(IdentifierType.EMAIL), status_column(IdentifierType.EMAIL)
    first = first.with_columns(
        first[value].scatter(rows, heads[value]),
        first[status].scatter(rows, heads[status]),
    )
    rest = found.filter(~head)
    rest = rest.with_columns(rows.gather(rest["_row"]).alias("_row"))
    return EmailParts(first, rest if rest.height else None, emails.repair_counts(repaired))


def email_identifiers(
    values: pl.Series, options: NormalizeOptions
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Every address in ``values`` with its cell's row: one row per address, in cell order
    (``_row``, the value and status columns), and the cells each repair touched."""
    parts = email_parts(values, options)
    found = parts.first.with_row_index("_row")
    if parts.rest is not None:
        found = pl.concat([found, parts.rest.select(found.columns)]).sort(
            "_row", maintain_order=True
        )
    return found, parts.repairs


def _with_row(pieces: pl.LazyFrame, options: NormalizeOptions) -> pl.LazyFrame:
    """The rules, keeping each address's ``_row``."""
    return pl.concat([pieces.select("_row"), _email_rules(pieces, options)], how="horizontal")


def _email_frame(frame: pl.LazyFrame, column: str, options: NormalizeOptions) -> pl.LazyFrame:
    """Row-aligned: each cell's first address (the rest: :func:`email_parts`)."""
    return email_parts(frame.select(column).collect().to_series(), options).first.lazy()


def _device_frame(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    stripped = frame.select(_s=pl.col(column).cast(pl.String).str.strip_chars())
    normalized = stripped.with_columns(_n=pl.col("_s").str.to_lowercase())
    reason = (
        pl.when(~pl.col("_n").str.contains(_UUID))
        .then(_status("malformed"))
        .when(pl.col("_n") == _ZERO_UUID)
        .then(_status("zeroed"))
        .otherwise(None)
    )
    return _finish(IdentifierType.DEVICE_ID, normalized, reason)


def spreadsheet_phones(values: pl.Series) -> pl.Series:
    """Phones as spreadsheets and numeric columns write them (``4155550123.0``) back to digits.

    An integral float is the number's digits; a float column cast to text reads the same way.
    Scientific notation lost digits and cannot be undone: it is rejected in :func:`_phone_frame`
    (its letter ``E`` sends it there from the C path too).
    """
    values = values.cast(pl.String)
    floats = values.str.ends_with(".0")  # the cheap test; the exact one runs on the few hits
    if not floats.any():
        return values
    digits = values.str.replace(r"^(\s*\+?\d+)\.0$", "${1}")
    return pl.select(pl.when(floats).then(digits).otherwise(values)).to_series().alias(values.name)


def _phone_frame(
    values: pl.Series,
    options: NormalizeOptions,
    native: bool = True,
    regions: pl.Series | None = None,
) -> pl.LazyFrame:
    """Phones leave the expression world: libphonenumber's rules, vectorized (see ``phones``).

    ``regions``: a region per row (see :func:`row_regions`), or None for the default region.
    """
    stripped = values.cast(pl.String).str.strip_chars()
    hexes = stripped.str.contains(_SHA256_HEX)
    scientific = stripped.str.contains(_SCIENTIFIC).fill_null(False)
    needs_parse = ~(stripped.is_null() | (stripped == "") | hexes | scientific)
    parsed = normalize_phones(
        stripped.filter(needs_parse),
        default_region=options.default_region,
        validation=options.phone_validation,
        with_route=True,
        native=native,
        regions=None if regions is None else regions.filter(needs_parse),
    )
    frame = pl.DataFrame({"_s": stripped, "_h": hexes, "_e": scientific}).select(
        "_s",
        _n=pl.when(pl.col("_h")).then(pl.col("_s").str.to_lowercase()),
        _r=pl.when(pl.col("_e")).then(pl.lit("scientific_notation")).otherwise(None),
    )
    fallback = pl.repeat(False, len(values), dtype=pl.Boolean, eager=True)
    if parsed.height:
        positions = needs_parse.arg_true()
        frame = frame.with_columns(
            frame["_n"].scatter(positions, parsed["e164"]),
            frame["_r"].scatter(positions, parsed["reason"]),
        )
        fallback = fallback.scatter(positions, parsed["fallback"])
    finished = _finish(IdentifierType.PHONE, frame.lazy(), pl.col("_r").cast(STATUS))
    return finished.with_columns(pl.lit(fallback).alias(FALLBACK_COLUMN))


def normalize_batch(
    batch: pl.DataFrame,
    columns: Mapping[IdentifierType, str],
    options: NormalizeOptions,
) -> pl.DataFrame:
    """Turn one batch of raw rows into a value column and a status column per mapped type.

    ``columns`` maps each identifier type present in the input to its column in ``batch``.
    The result has one row per input row, so row-level layouts (``wide``) keep people together.
    """
    source = batch.lazy()
    frames: list[pl.LazyFrame] = []
    for kind in IdentifierType:
        if kind not in columns:
            continue
        if kind is IdentifierType.EMAIL:
            frames.append(_email_frame(source, columns[kind], options))
        elif kind is IdentifierType.DEVICE_ID:
            frames.append(_device_frame(source, columns[kind]))
        else:
            regions = _country(batch, options)
            phones = spreadsheet_phones(batch[columns[kind]])
            frames.append(
                _phone_frame(phones, options, regions=None if regions is None else regions.regions)
            )
    if not frames:
        return pl.DataFrame(height=batch.height)
    return pl.concat(frames, how="horizontal").collect()


def normalize_values(
    kind: IdentifierType, values: list[str | None], options: NormalizeOptions | None = None
) -> list[tuple[str | None, str]]:
    """Convenience for tests and one-off checks: ``(sha256 or None, status)`` per identifier.

    One per value, except that an email cell holding several addresses gives one per address.
    """
    options = options or NormalizeOptions()
    if kind is IdentifierType.EMAIL:
        out, _ = email_identifiers(pl.Series("v", values, dtype=pl.String), options)
    else:
        frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
        out = normalize_batch(frame, {kind: "v"}, options)
    return list(zip(digests(out, kind).to_list(), out[status_column(kind)].to_list(), strict=True))


@dataclass(frozen=True)
class Hashes:
    """One type's digests, row-aligned with its batch, and which rows have one.

    ``matrix`` is ``(rows, 64)``: the hex digest of each hashed or pre-hashed row (other rows
    are undefined); ``accepted`` marks those rows. This is what the encoder makes records of.
    """

    matrix: Matrix
    accepted: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Extra:
    """A type's identifiers beyond the first of each cell that held several (emails only):
    each one's row in the batch, status code and digest."""

    rows: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint8]
    hashes: Hashes


@dataclass(frozen=True)
class HashedBatch:
    """A batch after the rules and hashing: per type, each row's status code and digest.

    ``codes`` and ``hashes`` hold each row's (first) identifier; ``extra`` the others of a
    cell that held several; ``repairs`` how many cells each email repair touched.
    """

    rows: int
    codes: dict[IdentifierType, npt.NDArray[np.uint8]]
    hashes: dict[IdentifierType, Hashes]
    phone_fallback: int
    #: Phones kept that were read with their row's country (see ``country_column``).
    phone_row_country: int = 0
    #: Non-blank country values that named no country (the default region was used).
    country_unknown: int = 0
    extra: dict[IdentifierType, Extra] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)


def hash_frame(frame: pl.DataFrame, kind: IdentifierType) -> Hashes:
    """A normalized frame's digests: hashed values hashed, pre-hashed ones as they are."""
    status, value = frame[status_column(kind)], frame[value_column(kind)]
    hashed, prehashed = (status == HASHED).fill_null(False), (status == PREHASHED).fill_null(False)
    accepted = (hashed | prehashed).to_numpy()
    if hashed.all():  # nothing to scatter
        return Hashes(sha256_matrix(value), accepted)
    matrix = np.zeros((frame.height, 64), dtype=np.uint8)
    for mask, digest in ((hashed, sha256_matrix), (prehashed, hex_matrix)):
        if mask.any():
            matrix[mask.to_numpy()] = digest(value.filter(mask))
    return Hashes(matrix, accepted)


def _codes(frame: pl.DataFrame, kind: IdentifierType) -> npt.NDArray[np.uint8]:
    codes: npt.NDArray[np.uint8] = (
        frame[status_column(kind)].to_physical().cast(pl.UInt8).to_numpy(writable=True)
    )
    return codes


def _accepted(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Rows that carry a digest: hashed here, or pre-hashed."""
    accepted: npt.NDArray[np.bool_] = (codes == CODES[HASHED]) | (codes == CODES[PREHASHED])
    return accepted


_Emails = tuple[npt.NDArray[np.uint8], Hashes, Extra | None, dict[str, int]]


def _polars_emails(values: pl.Series, options: NormalizeOptions) -> _Emails:
    """Emails through the polars rules: each row's first address, the other addresses, and
    the repairs' counts."""
    parts = email_parts(values, options)
    extra = None
    if parts.rest is not None:
        rest = parts.rest
        extra = Extra(
            rest["_row"].to_numpy().astype(np.int64),
            _codes(rest, IdentifierType.EMAIL),
            hash_frame(rest, IdentifierType.EMAIL),
        )
    first = parts.first
    codes, hashes = _codes(first, IdentifierType.EMAIL), hash_frame(first, IdentifierType.EMAIL)
    return codes, hashes, extra, parts.repairs


def _native_emails(values: pl.Series, options: NormalizeOptions) -> _Emails | None:
    """Emails through the C kernel; the few values it leaves (see ``hashing.EMAIL_DEFER``:
    anything a repair may touch, among others) through the polars rules."""
    values = values.cast(pl.String)
    result = email_kernel(values, options.gmail_canonical)
    if result is None:
        return None
    codes, matrix, deferred = result  # a null is read as empty (the kernel takes the bitmap)
    # The kernel has no length limits: a value long enough to break one goes to the polars
    # rules (a few in a million; the test is cheap, the byte length read from Arrow).
    long = values.str.len_bytes() > MAX_LOCAL_PART_CHARS
    if long.any():
        codes[long.fill_null(False).to_numpy()] = EMAIL_DEFER
        deferred = 1
    if not deferred:
        return codes, Hashes(matrix, _accepted(codes)), None, {}
    rows = np.flatnonzero(codes == EMAIL_DEFER)
    first, hashes, extra, repairs = _polars_emails(values.gather(rows), options)
    codes[rows] = first
    matrix[rows] = hashes.matrix
    if extra is not None:
        extra = Extra(rows[extra.rows], extra.codes, extra.hashes)
    return codes, Hashes(matrix, _accepted(codes)), extra, repairs


def _country(batch: pl.DataFrame, options: NormalizeOptions) -> RowRegions | None:
    """Each row's region from the country column, when there is one."""
    if options.country_column is None:
        return None
    return row_regions(batch[options.country_column], options.default_region)


def _row_country(
    values: pl.Series, codes: npt.NDArray[np.uint8], regions: RowRegions | None
) -> int:
    """Phones kept with their row's own country: recognized, and not in international form
    (a leading plus names its country itself)."""
    if regions is None:
        return 0
    international = values.str.contains(r"^\s*[+\x{FF0B}]").fill_null(False)
    used = regions.from_column & ~international
    return int(np.count_nonzero(used.to_numpy() & (codes == CODES[HASHED])))


def _native_phones(
    values: pl.Series, options: NormalizeOptions, regions: RowRegions | None = None
) -> tuple[npt.NDArray[np.uint8], Hashes, int] | None:
    """Phones through the C path (E.164 and SHA-256 in one pass); the values it leaves
    (pre-hashed ones, letters, extensions, unusual prefixes) through ``_phone_frame``."""
    if options.phone_validation != "valid":
        return None
    codes_for = (CODES[HASHED], CODES["empty"], CODES["invalid_number"], CODES["not_a_number"])
    per_row = None if regions is None else regions.regions
    region = options.default_region.upper()
    decided = phones_native.decide(values, region, codes_for, hashes=True, regions=per_row)
    if decided is None:
        return None
    codes, matrix, fallback = decided.codes, decided.out, 0
    if decided.deferred:
        rows = np.flatnonzero(codes == phones_native.DEFER)
        sub = None if per_row is None else per_row.gather(rows)
        frame = _phone_frame(values.gather(rows), options, native=False, regions=sub).collect()
        codes[rows] = _codes(frame, IdentifierType.PHONE)
        matrix[rows] = hash_frame(frame, IdentifierType.PHONE).matrix
        fallback = int(frame[FALLBACK_COLUMN].sum())
    return codes, Hashes(matrix, _accepted(codes)), fallback


def hash_batch(
    batch: pl.DataFrame,
    columns: Mapping[IdentifierType, str],
    options: NormalizeOptions,
) -> HashedBatch:
    """The rules and SHA-256 for one batch of raw rows (the pipeline's hot path).

    Same answers as :func:`normalize_batch` followed by :func:`hash_frame`; emails take the C
    kernel when it is built (see :mod:`.hashing`).
    """
    codes: dict[IdentifierType, npt.NDArray[np.uint8]] = {}
    hashes: dict[IdentifierType, Hashes] = {}
    rest = dict(columns)
    fallback = row_country = 0
    regions = _country(batch, options) if IdentifierType.PHONE in columns else None
    extra: dict[IdentifierType, Extra] = {}
    repairs: dict[str, int] = {}
    if IdentifierType.EMAIL in columns:
        values = batch[columns[IdentifierType.EMAIL]]
        found = _native_emails(values, options) or _polars_emails(values, options)
        codes[IdentifierType.EMAIL], hashes[IdentifierType.EMAIL], more, repairs = found
        if more is not None:
            extra[IdentifierType.EMAIL] = more
        del rest[IdentifierType.EMAIL]
    if IdentifierType.PHONE in columns:
        values = spreadsheet_phones(batch[columns[IdentifierType.PHONE]])
        phones = _native_phones(values, options, regions)
        if phones is not None:
            codes[IdentifierType.PHONE], hashes[IdentifierType.PHONE], fallback = phones
            del rest[IdentifierType.PHONE]
    if rest:
        normalized = normalize_batch(batch, rest, options)
        for kind in rest:
            codes[kind] = _codes(normalized, kind)
            hashes[kind] = hash_frame(normalized, kind)
        if FALLBACK_COLUMN in normalized.columns:
            fallback += int(normalized[FALLBACK_COLUMN].sum())
    if regions is not None:
        raw = batch[columns[IdentifierType.PHONE]].cast(pl.String)
        row_country = _row_country(raw, codes[IdentifierType.PHONE], regions)
    return HashedBatch(
        rows=batch.height,
        codes={kind: codes[kind] for kind in columns},
        hashes={kind: hashes[kind] for kind in columns},
        phone_fallback=fallback,
        phone_row_country=row_country,
        country_unknown=0 if regions is None else regions.unknown,
        extra=extra,
        repairs=repairs,
    )
