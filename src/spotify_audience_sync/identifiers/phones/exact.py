"""The exact phone path: libphonenumber itself, one ``parse`` per distinct value.

This is the definition of correct. :mod:`.normalize` uses it for the values the vectorized path
cannot decide, and the differential test and the benchmark use it as the reference.
"""

from __future__ import annotations

from typing import Literal

import phonenumbers
import polars as pl

__all__ = [
    "PHONE_REASONS",
    "REASON",
    "PhoneValidation",
    "normalize_phones_exact",
    "parse_exact",
    "parse_exact_both",
]

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
#: The reasons as a polars Enum: the vectorized path carries them as small integers, since
#: string literals in a long when/then chain cost more than the regexes around them.
REASON = pl.Enum(PHONE_REASONS)

_PARSE_REASONS: dict[int, str] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not_a_number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too_short",
    phonenumbers.NumberParseException.TOO_LONG: "too_long",
}

SCHEMA = {"e164": pl.String, "reason": pl.String}


Decision = tuple[str | None, str | None]


def _kept(e164: str, ok: bool) -> Decision:
    return (e164, None) if ok else (None, "invalid_number")


def parse_exact_both(raw: str, region: str) -> dict[str, Decision]:
    """Decide one (already stripped, non-empty) string with libphonenumber, in both modes.

    One ``parse`` serves both modes, which halves the cost of the differential test.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        rejected: Decision = (None, _PARSE_REASONS.get(exc.error_type, "not_a_number"))
        return {"valid": rejected, "possible": rejected}
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return {
        "valid": _kept(e164, phonenumbers.is_valid_number(number)),
        "possible": _kept(e164, phonenumbers.is_possible_number(number)),
    }


def parse_exact(raw: str, region: str, validation: PhoneValidation) -> Decision:
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


def decide_distinct(distinct: pl.Series, region: str, validation: PhoneValidation) -> pl.DataFrame:
    """``key``, ``e164``, ``reason`` for distinct, stripped, non-empty strings."""
    decided = [parse_exact(raw, region, validation) for raw in distinct.to_list()]
    return pl.DataFrame(
        {
            "key": distinct,
            "e164": [d[0] for d in decided],
            "reason": [d[1] for d in decided],
        },
        schema={"key": pl.String, **SCHEMA},
    )


def normalize_phones_exact(
    values: pl.Series,
    *,
    default_region: str = "US",
    validation: PhoneValidation = "valid",
) -> pl.DataFrame:
    """The reference: :func:`.normalize.normalize_phones`'s contract, all in libphonenumber."""
    region = default_region.upper()
    stripped = values.cast(pl.String).str.strip_chars()
    distinct = stripped.filter(stripped.is_not_null() & (stripped != "")).unique()
    lookup = decide_distinct(distinct, region, validation)
    frame = pl.DataFrame({"key": stripped}).join(
        lookup, on="key", how="left", maintain_order="left"
    )
    return frame.select(
        "e164",
        reason=pl.when(pl.col("key").is_null() | (pl.col("key") == ""))
        .then(pl.lit("empty"))
        .otherwise(pl.col("reason")),
    )
