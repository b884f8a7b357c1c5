"""Phone numbers to E.164, exactly as libphonenumber (the ``phonenumbers`` package) decides.

The contract of this module is :func:`normalize_phones`: a column of raw strings in, a frame of
``e164`` (``+`` and digits, or null) and ``reason`` (null when kept, else why it was rejected)
out, row for row. Pure: no I/O, nothing logged.

libphonenumber parses ~25,000 values/s per core, far below the rest of the pipeline, so most
values take a vectorized path (:mod:`.phones_fast`) generated from libphonenumber's own
metadata; only the values it cannot decide exactly (letters, extensions, URIs, odd symbols) are
parsed by libphonenumber itself (:mod:`.phones_exact`), once per distinct value. The
differential test holds the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ._phonemeta import meta_for, regions_for_code
from .phones_exact import SCHEMA, PhoneValidation, decide_distinct
from .phones_fast import classify, decide

__all__ = [
    "PHONE_REASONS",
    "PhoneStats",
    "PhoneValidation",
    "normalize_phones",
    "normalize_phones_with_stats",
]

#: Every reason a phone value can be rejected for, in report order.
PHONE_REASONS: tuple[str, ...] = (
    "empty",
    "not_a_number",
    "invalid_country_code",
    "too_short",
    "too_long",
    "invalid_number",
)


@dataclass(frozen=True)
class PhoneStats:
    """How a batch was decided: rows by the vectorized path, rows and values by libphonenumber."""

    rows: int
    fast_rows: int
    fallback_rows: int
    fallback_values: int

    @property
    def fallback_share(self) -> float:
        """Share of rows that needed libphonenumber itself."""
        return self.fallback_rows / self.rows if self.rows else 0.0


def normalize_phones(
    values: pl.Series,
    *,
    default_region: str = "US",
    validation: PhoneValidation = "valid",
) -> pl.DataFrame:
    """Return ``e164`` and ``reason`` for each value, in input order.

    ``default_region`` (ISO 3166 alpha-2) is used for numbers written without a country code.
    ``validation="valid"`` keeps what ``phonenumbers.is_valid_number`` accepts; ``"possible"``
    relaxes that to ``is_possible_number``.
    """
    frame, _ = normalize_phones_with_stats(
        values, default_region=default_region, validation=validation
    )
    return frame


def _fast(
    stripped: pl.Series, default_region: str, validation: PhoneValidation
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """``e164``, ``reason`` and a fallback flag per row, from the vectorized path."""
    default = meta_for(default_region)
    if default is None:
        everything = pl.Series([True] * len(stripped), dtype=pl.Boolean)
        none = pl.Series([None] * len(stripped), dtype=pl.String)
        empty = stripped.is_null() | (stripped == "")
        return (
            none,
            pl.select(pl.when(empty).then(pl.lit("empty"))).to_series(),
            everything & ~empty,
        )
    routed = classify(stripped, default).with_row_index("row")
    e164 = pl.Series("e164", [None] * len(stripped), dtype=pl.String)
    reason = routed["reason"]
    fallback = routed["fallback"]
    pending = routed.filter(pl.col("reason").is_null() & ~pl.col("fallback"))
    groups = pending.partition_by("code", "meta_default", as_dict=True, include_key=False)
    for (code, meta_default), part in groups.items():
        key = default.key if meta_default else regions_for_code(int(str(code)))[0]
        meta = meta_for(key)
        decided = None if meta is None else decide(part["nsn"], meta, validation)
        rows = part["row"]
        if decided is None:
            fallback = fallback.scatter(rows, True)
            continue
        e164 = e164.scatter(rows, decided["e164"])
        reason = reason.scatter(rows, decided["reason"])
    return e164, reason, fallback


def normalize_phones_with_stats(
    values: pl.Series,
    *,
    default_region: str = "US",
    validation: PhoneValidation = "valid",
) -> tuple[pl.DataFrame, PhoneStats]:
    """:func:`normalize_phones`, plus how many rows the vectorized path could not decide."""
    region = default_region.upper()
    stripped = values.cast(pl.String).str.strip_chars()
    e164, reason, fallback = _fast(stripped, region, validation)
    frame = pl.DataFrame({"key": stripped, "e164": e164, "reason": reason, "fallback": fallback})
    slow = frame.filter(pl.col("fallback"))
    distinct = slow["key"].unique()
    if len(slow):
        lookup = decide_distinct(distinct, region, validation)
        exact = slow.select("key").join(lookup, on="key", how="left", maintain_order="left")
        rows = frame.with_row_index("row").filter(pl.col("fallback"))["row"]
        e164 = e164.scatter(rows, exact["e164"])
        reason = reason.scatter(rows, exact["reason"])
    stats = PhoneStats(
        rows=len(frame),
        fast_rows=len(frame) - len(slow),
        fallback_rows=len(slow),
        fallback_values=len(distinct),
    )
    return pl.DataFrame({"e164": e164, "reason": reason}, schema=SCHEMA), stats
