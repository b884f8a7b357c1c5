"""The vectorized phone path: ``phonenumbers.parse`` + validity as polars expressions.

It retraces libphonenumber's own steps (``parse``, ``_maybe_extract_country_code``,
``_maybe_strip_national_prefix_carrier_code``, ``_test_number_length``, ``is_valid_number``),
in the same order, for the strings whose characters make every step decidable by a regex:
digits (ASCII and full-width), leading plus signs and the punctuation libphonenumber ignores.
Everything else (letters, ``tel:`` URIs, odd symbols, ``+`` followed by an unknown calling code
that might be an IDD) is flagged ``fallback``; of those, values with a plain extension go back
through the fast path without it (:func:`strip_extension`), the rest to the exact path.

This module is stage one (:func:`classify`): what the default region alone decides, on the
whole column at once. Stage two, the national prefix and the patterns of the number's own
region, is :mod:`.decide`.
"""

from __future__ import annotations

import re
from functools import cache

import polars as pl
from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

from spotify_audience_sync.identifiers.phones.exact import REASON
from spotify_audience_sync.identifiers.phones.metadata import (
    MAX_LENGTH,
    MIN_NSN,
    RegionMeta,
    calling_code_pattern,
    meta_for,
)

__all__ = ["Stages", "classify", "general_match", "national_prefix_stages", "strip_extension"]

Stages = list[dict[str, pl.Expr]]

_FULLWIDTH = [chr(0xFF10 + i) for i in range(10)]
_ASCII = [str(i) for i in range(10)]
_DIGITS = r"0-9\x{FF10}-\x{FF19}"
_PLUS = r"+\x{FF0B}"


def _punctuation() -> list[str]:
    """The separators the fast path accepts.

    Only characters libphonenumber treats as ignorable punctuation, that are not word characters
    (so its trailing-character trim behaves as ours), and that never signal an extension.
    """
    candidates = " -./()[]\u00a0\u00ad\u200b\u2060\u3000\u2010\u2011\u2012\u2013\u2014\u2015"
    candidates += "\u2212\u30fc\uff0d\uff0e\uff0f\uff08\uff09\uff3b\uff3d"
    punct = re.compile("[" + _VALID_PUNCTUATION + "]")
    return [c for c in candidates if punct.fullmatch(c) and not re.fullmatch(r"\w", c)]


_PUNCT_CHARS = _punctuation()
_P = "".join(f"\\x{{{ord(c):X}}}" for c in _PUNCT_CHARS)
#: One Aho-Corasick pass turns a fast-path string into its digits: separators and plus signs
#: dropped, full-width digits made ASCII (other characters never reach stage two).
_DROPPED = [*_PUNCT_CHARS, "+", "\uff0b", *_FULLWIDTH]
_KEPT = [""] * (len(_PUNCT_CHARS) + 2) + _ASCII
#: Leading separators, then the plus signs, then digits and separators only.
_SIMPLE = f"^[{_P}]*[{_PLUS}]*[{_P}{_DIGITS}]*$"
#: libphonenumber's two-digit viability alternative (``\d{2}``, nothing else once trimmed).
_TWO_DIGITS = f"^[{_P}]*[{_DIGITS}]{{2}}[{_P}]*$"
_EXTENSION = r" *(?:[eE][xX][tT]\.?|[xX]) *[0-9]{1,6}$"
_WITH_EXTENSION = f"^[{_P}]*[{_PLUS}]*[{_P}{_DIGITS}]*[{_DIGITS}]{_EXTENSION}"


def strip_extension(values: pl.Series) -> pl.Series:
    """The number without its extension, for the common forms (`` ext. 123``, `` x123``).

    libphonenumber strips an extension before parsing when what precedes it is a viable
    number, which three or more digits guarantee, and the extension never reaches the E.164
    string: such a value parses exactly as its number alone. Null where that does not hold
    (other extension forms, or no extension at all).
    """
    with_extension = values.str.contains(_WITH_EXTENSION).fill_null(False)
    core = pl.select(
        pl.when(pl.lit(with_extension)).then(pl.lit(values)).str.replace(_EXTENSION, "")
    ).to_series()
    digits = core.str.count_matches(f"[{_DIGITS}]")
    return pl.select(pl.when(digits > MIN_NSN).then(pl.lit(core))).to_series()


def national_prefix_stages(x: pl.Expr, m: RegionMeta, p: str) -> Stages:
    """``_maybe_strip_national_prefix_carrier_code`` for one region, as ``with_columns`` stages.

    Adds ``{p}cand`` (the number with the national prefix stripped or transformed, null when
    the prefix does not match), ``{p}strip`` (whether libphonenumber keeps that candidate) and
    ``{p}gx`` / ``{p}gc`` (the general pattern on the number / on the candidate), so callers
    reuse the general-pattern matches instead of running the regex again.
    """
    gx = general_match(x, m)
    if m.national_prefix is None:
        return [
            {
                f"{p}cand": pl.lit(None, pl.String),
                f"{p}strip": pl.lit(False),
                f"{p}gx": gx,
                f"{p}gc": pl.lit(None, pl.Boolean),
            }
        ]
    prefix = f"^(?:{m.national_prefix})"
    first: dict[str, pl.Expr] = {
        f"{p}rest": x.str.extract(prefix + "(.*)$", m.national_prefix_groups + 1),
        f"{p}gx": gx,
    }
    candidate = pl.col(f"{p}rest")
    if m.transform is not None:
        first[f"{p}last"] = x.str.extract(prefix, m.national_prefix_groups)
        transformed = pl.when(pl.col(f"{p}last").is_not_null()).then(x)
        candidate = transformed.str.replace(prefix, m.transform).fill_null(candidate)
    gc = pl.col(f"{p}gc")
    return [
        first,
        {f"{p}cand": candidate},
        {f"{p}gc": general_match(pl.col(f"{p}cand"), m)},
        {
            f"{p}strip": pl.col(f"{p}rest").is_not_null()
            & ~(pl.col(f"{p}gx") & ~gc.fill_null(False))
        },
    ]


def general_match(x: pl.Expr, m: RegionMeta) -> pl.Expr:
    """``_match_national_number`` against the general description (a full match, no lengths)."""
    return pl.lit(False) if m.general is None else x.str.contains(m.general)


@cache
def _classify_plan(key: str) -> tuple[Stages, dict[str, pl.Expr]]:
    """Stage one's expressions for a default region, built once (they do not depend on data)."""
    default = meta_for(key)
    assert default is not None  # callers pass a region that has metadata
    dcc = str(default.country_code)
    s = pl.col("s")
    digits = pl.col("digits")
    plus = pl.col("plus")
    idd_rest = pl.col("idd_rest")
    intl = pl.col("intl")
    code = pl.col("code")
    idd_expr = pl.lit(None, pl.String)
    if default.idd_literal:  # most regions: a plain prefix such as 00 or 011
        idd_expr = (
            pl.when(digits.str.starts_with(default.idd_literal))
            .then(digits)
            .str.slice(len(default.idd_literal))
        )
    elif default.idd:
        # A cheap full-column test first; the capturing regex only runs where it matched.
        idd_head = default.idd.removesuffix("(.*)$")
        idd_expr = pl.when(digits.str.contains(idd_head)).then(digits).str.extract(default.idd, 1)
    # Only rows that start with the default calling code pay for the national-prefix logic.
    dcc_digits = pl.when(digits.str.starts_with(dcc) & ~intl).then(digits)
    dcc_strip = pl.col("dcc_strip")
    from_default_expr = pl.col("dcc_digits").is_not_null() & (
        (
            ~general_match(pl.col("dcc_digits"), default)
            & pl.when(dcc_strip).then(pl.col("dcc_gc")).otherwise(pl.col("dcc_gx"))
        )
        | pl.col("dcc_digits").str.len_bytes().is_in(sorted(default.too_long_lengths))
    )
    from_default = pl.col("from_default")
    dcc_national = pl.when(dcc_strip).then(pl.col("dcc_cand")).otherwise(pl.col("dcc_pot"))
    short_after_idd = intl & (pl.col("intl_digits").str.len_bytes() <= MIN_NSN)
    maybe_idd_after_plus = plus & code.is_null() & idd_rest.is_not_null()
    decided = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit("empty", REASON))
        .when(pl.col("too_long_input"))
        .then(pl.lit("too_long", REASON))
        .when(~pl.col("simple"))
        .then(pl.lit(None, REASON))
        .when(~pl.col("viable"))
        .then(pl.lit("not_a_number", REASON))
        .when(short_after_idd)
        .then(pl.lit("too_short", REASON))
        .when(intl & code.is_null() & ~maybe_idd_after_plus)
        .then(pl.lit("invalid_country_code", REASON))
    )
    fallback = (
        (s != "")
        & ~pl.col("too_long_input")
        & (~pl.col("simple") | (pl.col("viable") & ~short_after_idd & maybe_idd_after_plus))
    )
    stages: Stages = [
        {"s": s.str.strip_chars()},
        {
            "simple": s.str.contains(_SIMPLE),
            # Characters are counted only where the byte length says they might be too many.
            "too_long_input": pl.when(s.str.len_bytes() > MAX_LENGTH)
            .then(s)
            .str.len_chars()
            .fill_null(0)
            > MAX_LENGTH,
        },
        {
            # Anchored, so the scan stops at the first digit; exact for ``simple`` strings.
            "plus": s.str.contains(f"^[{_P}]*[{_PLUS}]"),
            "digits": s.str.replace_many(_DROPPED, _KEPT),
        },
        {
            # libphonenumber's ``\d{2}`` alternative: only rows with two digits need the regex.
            "viable": (digits.str.len_bytes() > MIN_NSN)
            | pl.when(digits.str.len_bytes() == MIN_NSN)
            .then(s)
            .str.contains(_TWO_DIGITS)
            .fill_null(False),
            "idd_rest": idd_expr,
        },
        {"intl": plus | (idd_rest.is_not_null() & ~idd_rest.str.starts_with("0"))},
        {
            "intl_digits": pl.when(plus).then(digits).when(intl).then(idd_rest),
            "dcc_digits": dcc_digits,
        },
        {
            "code": pl.col("intl_digits").str.extract(calling_code_pattern(), 1),
            "dcc_pot": pl.col("dcc_digits").str.slice(len(dcc)),
        },
        *national_prefix_stages(pl.col("dcc_pot"), default, "dcc_"),
        {"from_default": from_default_expr},
    ]
    outputs = {
        "s": s,
        "reason": decided,
        "fallback": fallback.fill_null(False),
        "group": pl.when(intl)
        .then(code.cast(pl.Int32) * 2)
        .otherwise(default.country_code * 2 + (~from_default).cast(pl.Int32)),
        "nsn": pl.when(pl.col("simple") & pl.col("viable") & intl.not_())
        .then(pl.when(from_default).then(dcc_national).otherwise(digits))
        .when(code.is_not_null())
        .then(pl.col("intl_digits").str.slice(code.str.len_bytes())),
    }
    return stages, outputs


def classify(values: pl.Series, default: RegionMeta) -> pl.LazyFrame:
    """Stage one: decide what the default region alone decides, route the rest.

    Returns, row for row: ``s`` (the value, whitespace-stripped as the reference strips it),
    ``reason`` (a rejection already certain), ``fallback`` (needs the exact path), ``group``
    (``2 * calling code + 1`` when stage two must use the default region's metadata,
    ``2 * calling code`` for the calling code's main region) and ``nsn`` (the national number
    before national-prefix stripping).
    """
    stages, outputs = _classify_plan(default.key)
    frame = pl.DataFrame({"s": values.cast(pl.String)}).lazy()
    for stage in stages:
        frame = frame.with_columns(**stage)
    return frame.select(**outputs)
