"""Phone numbers to E.164, exactly as libphonenumber (the ``phonenumbers`` package) decides.

The contract of this module is :func:`normalize_phones`: a column of raw strings in, a frame of
``e164`` (``+`` and digits, or null) and ``reason`` (null when kept, else why it was rejected)
out, row for row. Each distinct string is parsed once. Pure: no I/O, nothing logged.
"""

from __future__ import annotations

from typing import Literal

import phonenumbers
import polars as pl

__all__ = ["PHONE_REASONS", "PhoneValidation", "normalize_phones"]

PhoneValidation = Literal["valid", "possible"]

#: Every reason a phone value can be rejected for, in report order.
PHONE_REASONS: tuple[str, ...] = (
    "empty",
    "not_a_number",
    "invalid_country_code",
    "too_short",
    "too_long",
    "invalid_number",
)

_PARSE_REASONS: dict[int, str] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not_a_number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too_short",
    phonenumbers.NumberParseException.TOO_LONG: "too_long",
}

_SCHEMA = {"e164": pl.String, "reason": pl.String}


def _parse_one(raw: str, region: str, validation: PhoneValidation) -> tuple[str | None, str | None]:
    """Decide one (already stripped, non-empty) string with libphonenumber itself."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        return None, _PARSE_REASONS.get(exc.error_type, "not_a_number")
    ok = (
        phonenumbers.is_valid_number(number)
        if validation == "valid"
        else phonenumbers.is_possible_number(number)
    )
    if not ok:
        return None, "invalid_number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


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
    region = default_region.upper()
    stripped = values.cast(pl.String).str.strip_chars()
    distinct = stripped.filter(stripped.is_not_null() & (stripped != "")).unique()
    decided = [_parse_one(raw, region, validation) for raw in distinct.to_list()]
    lookup = pl.DataFrame(
        {
            "key": distinct,
            "e164": [d[0] for d in decided],
            "reason": [d[1] for d in decided],
        },
        schema={"key": pl.String, **_SCHEMA},
    )
    frame = pl.DataFrame({"key": stripped}).join(
        lookup, on="key", how="left", maintain_order="left"
    )
    return frame.select(
        "e164",
        reason=pl.when(pl.col("key").is_null() | (pl.col("key") == ""))
        .then(pl.lit("empty"))
        .otherwise(pl.col("reason")),
    )
