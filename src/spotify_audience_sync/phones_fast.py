"""The vectorized phone path: ``phonenumbers.parse`` + validity as polars expressions.

It retraces libphonenumber's own steps (``parse``, ``_maybe_extract_country_code``,
``_maybe_strip_national_prefix_carrier_code``, ``_test_number_length``, ``is_valid_number``),
in the same order, for the strings whose characters make every step decidable by a regex:
digits (ASCII and full-width), leading plus signs and the punctuation libphonenumber ignores.
Everything else (letters, extensions, ``tel:`` URIs, odd symbols, ``+`` followed by an unknown
calling code that might be an IDD) is flagged ``fallback`` for the exact path.

Stage one (:func:`classify`) runs on the whole column at once and depends only on the default
region. Stage two (:func:`decide`) runs once per metadata record present in the batch: the
national-prefix rules and number patterns differ per region, and small per-region regexes are
much faster than one alternation over all 245 regions.
"""

from __future__ import annotations

import re
from typing import Literal

import polars as pl
from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

from ._phonemeta import MAX_LENGTH, RegionMeta, calling_code_pattern, meta_for, regions_for_code

__all__ = ["classify", "decide"]

_MIN_NSN = 2
_MAX_NSN = 17

_FULLWIDTH = [chr(0xFF10 + i) for i in range(10)]
_ASCII = [str(i) for i in range(10)]
_DIGITS = r"0-9\x{FF10}-\x{FF19}"
_PLUS = r"+\x{FF0B}"


def _punctuation() -> str:
    """The separators the fast path accepts, as a Rust class body.

    Only characters libphonenumber treats as ignorable punctuation, that are not word characters
    (so its trailing-character trim behaves as ours), and that never signal an extension.
    """
    candidates = " -./()[]\u00a0\u00ad\u200b\u2060\u3000\u2010\u2011\u2012\u2013\u2014\u2015"
    candidates += "\u2212\u30fc\uff0d\uff0e\uff0f\uff08\uff09\uff3b\uff3d"
    punct = re.compile("[" + _VALID_PUNCTUATION + "]")
    kept = [c for c in candidates if punct.fullmatch(c) and not re.fullmatch(r"\w", c)]
    return "".join(f"\\x{{{ord(c):X}}}" for c in kept)


_P = _punctuation()
#: Leading separators, then the plus signs, then digits and separators only.
_SIMPLE = f"^[{_P}]*[{_PLUS}]*[{_P}{_DIGITS}]*$"
#: libphonenumber's two-digit viability alternative (``\d{2}``, nothing else once trimmed).
_TWO_DIGITS = f"^[{_P}]*[{_DIGITS}]{{2}}[{_P}]*$"


def strip_national_prefix(x: pl.Expr, m: RegionMeta) -> pl.Expr:
    """``_maybe_strip_national_prefix_carrier_code`` for one region (carrier code dropped)."""
    if m.national_prefix is None:
        return x
    prefix = f"^(?:{m.national_prefix})"
    rest = x.str.extract(prefix + "(.*)$", m.national_prefix_groups + 1)
    candidate = rest
    if m.transform is not None:
        last_group = x.str.extract(prefix, m.national_prefix_groups)
        candidate = (
            pl.when(last_group.is_not_null())
            .then(x.str.replace(prefix, m.transform))
            .otherwise(rest)
        )
    keep = rest.is_null() | (_general(x, m) & ~_general(candidate, m))
    return pl.when(keep).then(x).otherwise(candidate)


def _general(x: pl.Expr, m: RegionMeta) -> pl.Expr:
    """``_match_national_number`` against the general description (a full match, no lengths)."""
    return pl.lit(False) if m.general is None else x.str.contains(m.general)


def classify(stripped: pl.Series, default: RegionMeta) -> pl.DataFrame:
    """Stage one: decide what the default region alone decides, route the rest.

    Returns, row for row: ``reason`` (a rejection already certain), ``fallback`` (needs the
    exact path), ``meta`` (the metadata key stage two must use) and ``nsn`` (the national number
    before national-prefix stripping). Exactly one of reason / fallback / meta is set.
    """
    dcc = str(default.country_code)
    s = pl.col("s")
    digits = pl.col("digits")
    plus = pl.col("plus")
    idd_rest = pl.col("idd_rest")
    intl = pl.col("intl")
    code = pl.col("code")
    idd_expr = digits.str.extract(default.idd, 1) if default.idd else pl.lit(None, pl.String)
    from_default = digits.str.starts_with(dcc) & (
        (~_general(digits, default) & _general(pl.col("dcc_national"), default))
        | digits.str.len_bytes().is_in(sorted(default.too_long_lengths))
    )
    short_after_idd = intl & (pl.col("intl_digits").str.len_bytes() <= _MIN_NSN)
    maybe_idd_after_plus = plus & code.is_null() & idd_rest.is_not_null()
    reason = (
        pl.when(s.is_null() | (s == ""))
        .then(pl.lit("empty"))
        .when(pl.col("too_long_input"))
        .then(pl.lit("too_long"))
        .when(~pl.col("simple"))
        .then(pl.lit(None, pl.String))
        .when(~pl.col("viable"))
        .then(pl.lit("not_a_number"))
        .when(short_after_idd)
        .then(pl.lit("too_short"))
        .when(intl & code.is_null() & ~maybe_idd_after_plus)
        .then(pl.lit("invalid_country_code"))
    )
    return (
        pl.DataFrame({"s": stripped})
        .lazy()
        .with_columns(
            too_long_input=s.str.len_chars() > MAX_LENGTH,
            simple=s.str.contains(_SIMPLE),
            two_digits=s.str.contains(_TWO_DIGITS),
            plus=s.str.contains(f"[{_PLUS}]"),
            digits=s.str.replace_all(f"[^{_DIGITS}]", "").str.replace_many(_FULLWIDTH, _ASCII),
        )
        .with_columns(
            viable=(digits.str.len_bytes() > _MIN_NSN) | pl.col("two_digits"),
            idd_rest=idd_expr,
            dcc_national=strip_national_prefix(digits.str.slice(len(dcc)), default),
        )
        .with_columns(
            intl=plus | (idd_rest.is_not_null() & ~idd_rest.str.starts_with("0")),
        )
        .with_columns(intl_digits=pl.when(plus).then(digits).when(intl).then(idd_rest))
        .with_columns(code=pl.col("intl_digits").str.extract(calling_code_pattern(), 1))
        .select(
            reason=reason,
            fallback=(
                (s != "")
                & ~pl.col("too_long_input")
                & (~pl.col("simple") | (pl.col("viable") & ~short_after_idd & maybe_idd_after_plus))
            ).fill_null(False),
            code=pl.when(intl).then(code.cast(pl.Int32)).otherwise(default.country_code),
            meta_default=intl.not_() & ~from_default,
            nsn=pl.when(intl)
            .then(pl.col("intl_digits").str.slice(code.str.len_bytes()))
            .when(from_default)
            .then(pl.col("dcc_national"))
            .otherwise(digits),
        )
        .collect()
    )


def _accept(key: pl.Series, m: RegionMeta) -> pl.Series:
    """``_number_type_helper(...) != UNKNOWN`` on ``f"{len:02d}{nsn}"`` keys."""
    if m.valid_general is None or m.valid_types is None:
        return pl.Series([False] * len(key), dtype=pl.Boolean)
    return key.str.contains(m.valid_general) & key.str.contains(m.valid_types)


def _valid(nsn: pl.Series, metas: list[RegionMeta]) -> pl.Series:
    """``is_valid_number``: the first region that claims the number decides (leading digits)."""
    key = nsn.str.len_bytes().cast(pl.String).str.zfill(2) + nsn
    valid = pl.Series([False] * len(nsn), dtype=pl.Boolean)
    todo = pl.Series(range(len(nsn)), dtype=pl.UInt32)
    for m in metas:
        if len(todo) == 0:
            break
        sub_key = key.gather(todo)
        if m.leading_digits is None:
            claimed = _accept(sub_key, m)
            valid = valid.scatter(todo.filter(claimed), True)
        else:
            claimed = nsn.gather(todo).str.contains(m.leading_digits)
            idx = todo.filter(claimed)
            valid = valid.scatter(idx, _accept(key.gather(idx), m))
        todo = todo.filter(~claimed)
    return valid


def decide(
    nsn: pl.Series, m: RegionMeta, validation: Literal["valid", "possible"]
) -> pl.DataFrame | None:
    """Stage two for the rows of one metadata record: national prefix, lengths, validity.

    Returns ``e164`` and ``reason`` per row, or None when a region of the calling code lacks
    translatable metadata (the caller then sends these rows to the exact path).
    """
    metas = [meta_for(k) for k in regions_for_code(m.country_code)]
    known = [x for x in metas if x is not None]
    if len(known) != len(metas) or not known:
        return None
    x = pl.col("nsn")
    frame = (
        pl.DataFrame({"nsn": nsn})
        .lazy()
        .with_columns(candidate=strip_national_prefix(x, m))
        .with_columns(
            national=pl.when(
                pl.col("candidate").str.len_bytes().is_in(sorted(m.strip_ok_lengths))
                & (x.str.len_bytes() >= _MIN_NSN)
            )
            .then(pl.col("candidate"))
            .otherwise(x)
        )
        .with_columns(n=pl.col("national").str.len_bytes())
        .collect()
    )
    national = frame["national"]
    n = frame["n"]
    if validation == "possible":
        ok = n.is_in(sorted(known[0].possible_lengths))
    else:
        ok = pl.Series([False] * len(national), dtype=pl.Boolean)
        checkable = ((n >= _MIN_NSN) & (n <= _MAX_NSN)).arg_true()
        if len(checkable):
            ok = ok.scatter(checkable, _valid(national.gather(checkable), known))
    return pl.DataFrame({"national": national, "n": n, "ok": ok}).select(
        e164=pl.when(pl.col("ok") & pl.col("n").is_between(_MIN_NSN, _MAX_NSN)).then(
            pl.lit(f"+{m.country_code}") + pl.col("national")
        ),
        reason=pl.when(pl.col("n") < _MIN_NSN)
        .then(pl.lit("too_short"))
        .when(pl.col("n") > _MAX_NSN)
        .then(pl.lit("too_long"))
        .when(~pl.col("ok"))
        .then(pl.lit("invalid_number")),
    )
