"""Table-driven tests of :func:`normalize_phones`: published vectors and the paths' edge cases.

Every case is also checked against libphonenumber itself, so a wrong expectation here cannot
hide a disagreement between the fast path and the reference.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.identifiers.phones import decide as phones_decide
from spotify_audience_sync.identifiers.phones import metadata as _phonemeta
from spotify_audience_sync.identifiers.phones import normalize as phones
from spotify_audience_sync.identifiers.phones.exact import normalize_phones_exact
from spotify_audience_sync.identifiers.phones.metadata import meta_for
from spotify_audience_sync.identifiers.phones.normalize import (
    PHONE_REASONS,
    PhoneStats,
    normalize_phones,
    normalize_phones_with_stats,
)


@pytest.fixture(autouse=True)
def _fast_path_for_every_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small batches here: let the vectorized path take even one-row groups."""
    monkeypatch.setattr(phones_decide, "MIN_GROUP_ROWS", 1)


FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))

CASES = [
    # Published vectors (uid2docs, googleads/data-manager-python).
    pytest.param("1 (234) 567-8901", "US", "valid", "+12345678901", None, id="uid2-us"),
    pytest.param("0491 570 006", "AU", "valid", "+61491570006", None, id="uid2-au-trunk"),
    pytest.param("1 800 555 0100", "US", "valid", "+18005550100", None, id="dm-us-tollfree"),
    pytest.param("+44-113-496-0987", "US", "valid", "+441134960987", None, id="dm-gb-plus"),
    pytest.param("1-800-555-0100   ", "US", "valid", "+18005550100", None, id="dm-trailing"),
    pytest.param(" +A BCD EFG ", "US", "valid", None, "not_a_number", id="dm-letters"),
    # Formats the fast path decides.
    pytest.param("011 44 20 7946 0958", "US", "valid", "+442079460958", None, id="idd-011"),
    pytest.param("0044 20 7946 0958", "DE", "valid", "+442079460958", None, id="idd-00"),
    pytest.param("(+44) 020 7946 0958", "US", "valid", "+442079460958", None, id="plus-trunk"),
    pytest.param("++44 20 7946 0958", "US", "valid", "+442079460958", None, id="double-plus"),
    pytest.param("44 20 7946 0958", "GB", "valid", "+442079460958", None, id="bare-cc"),
    pytest.param(
        "020 7946 0958".translate(FULLWIDTH), "GB", "valid", "+442079460958", None, id="fullwidth"
    ),
    pytest.param("030 123456", "DE", "valid", "+4930123456", None, id="de-trunk"),
    pytest.param("06 12 34 56 78", "FR", "valid", "+33612345678", None, id="fr-mobile"),
    pytest.param("(11) 96123-4567", "BR", "valid", "+5511961234567", None, id="br-mobile"),
    pytest.param("090-1234-5678", "JP", "valid", "+819012345678", None, id="jp-mobile"),
    pytest.param("+39 06 6988 1234", "US", "valid", "+390669881234", None, id="it-zero"),
    pytest.param("+1 268 464 1234", "US", "valid", "+12684641234", None, id="nanp-ag"),
    pytest.param("+800 1234 5678", "US", "valid", "+80012345678", None, id="non-geo"),
    pytest.param("212 555 0123", "US", "possible", "+12125550123", None, id="possible"),
    # Rejections the fast path decides, with libphonenumber's reason.
    pytest.param("", "US", "valid", None, "empty", id="empty"),
    pytest.param("   ", "US", "valid", None, "empty", id="blank"),
    pytest.param("- ()", "US", "valid", None, "not_a_number", id="no-digits"),
    pytest.param("1-2", "US", "valid", None, "not_a_number", id="two-punctuated"),
    pytest.param("12", "US", "valid", None, "invalid_number", id="two-digits"),
    pytest.param("+12", "US", "valid", None, "not_a_number", id="plus-two"),
    pytest.param("+999 1234 5678", "US", "valid", None, "invalid_country_code", id="bad-cc"),
    pytest.param("011 12", "US", "valid", None, "too_short", id="short-after-idd"),
    pytest.param("+44 1", "US", "valid", None, "too_short", id="short-nsn"),
    pytest.param("+44 123456789012345678", "US", "valid", None, "too_long", id="long-nsn"),
    pytest.param("1" * 251, "US", "valid", None, "too_long", id="long-input"),
    pytest.param("+1 555 0100", "US", "valid", None, "invalid_number", id="invalid"),
    # Formats only libphonenumber decides (the fallback).
    pytest.param("+1 212 555 0123 ext. 45", "US", "valid", "+12125550123", None, id="ext-dot"),
    pytest.param("(212) 555-0123 x7", "US", "valid", "+12125550123", None, id="ext-x"),
    pytest.param("12 x7", "US", "valid", None, "invalid_number", id="ext-short"),
    pytest.param("+1 212 555 0123 #45", "US", "valid", "+12125550123", None, id="ext-hash"),
    pytest.param("1-800-FLOWERS", "US", "valid", "+18003569377", None, id="vanity"),
    pytest.param("tel:+44-20-7946-0958", "US", "valid", "+442079460958", None, id="rfc3966"),
    pytest.param("+0044 20 7946 0958", "DE", "valid", "+442079460958", None, id="plus-idd"),
    pytest.param("Tel: 020 7946 0958", "GB", "valid", "+442079460958", None, id="label"),
]


@pytest.mark.parametrize(("raw", "region", "validation", "e164", "reason"), CASES)
def test_normalize_phones(
    raw: str, region: str, validation: str, e164: str | None, reason: str | None
) -> None:
    values = pl.Series([raw], dtype=pl.String)
    got = normalize_phones(values, default_region=region, validation=validation)  # type: ignore[arg-type]
    exact = normalize_phones_exact(values, default_region=region, validation=validation)  # type: ignore[arg-type]
    assert got.row(0) == (e164, reason)
    assert exact.row(0) == (e164, reason)


def test_reasons_are_the_published_set() -> None:
    assert PHONE_REASONS == (
        "empty",
        "not_a_number",
        "invalid_country_code",
        "too_short",
        "too_long",
        "invalid_number",
    )


def test_keeps_rows_order_nulls_and_schema() -> None:
    values = pl.Series(["+44 20 7946 0958", None, "x", "+44 20 7946 0958", ""])
    frame = normalize_phones(values, default_region="gb")
    assert frame.schema == pl.Schema({"e164": pl.String, "reason": pl.String})
    assert frame.rows() == [
        ("+442079460958", None),
        (None, "empty"),
        (None, "not_a_number"),
        ("+442079460958", None),
        (None, "empty"),
    ]


def test_empty_series() -> None:
    frame, stats = normalize_phones_with_stats(pl.Series([], dtype=pl.String))
    assert frame.shape == (0, 2)
    assert stats == PhoneStats(rows=0, fast_rows=0, fallback_rows=0, fallback_values=0)
    assert stats.fallback_share == 0.0


def test_stats_count_the_fallback_once_per_distinct_value() -> None:
    values = pl.Series(["212 555 0123", "212 555 0123;ext=1", "212 555 0123;ext=1", "n/a"])
    frame, stats = normalize_phones_with_stats(values, native=False)
    assert frame["e164"].to_list() == ["+12125550123", "+12125550123", "+12125550123", None]
    assert stats == PhoneStats(rows=4, fast_rows=1, fallback_rows=3, fallback_values=2)
    assert stats.fallback_share == pytest.approx(0.75)


def test_the_c_path_decides_plain_numbers_and_digitless_text_and_defers_the_rest() -> None:
    """In C: plain numbers and text with no digit at all (not_a_number); the extension goes
    the polars way, whose fallback (libphonenumber) is counted as before."""
    if hashing.native_module() is None:
        pytest.skip("the C extension is not built here")
    values = pl.Series(["212 555 0123", "212 555 0123;ext=1", "212 555 0123;ext=1", "n/a"])
    frame, stats = normalize_phones_with_stats(values)
    assert frame.equals(normalize_phones_exact(values))
    assert frame["reason"].to_list() == [None, None, None, "not_a_number"]
    assert stats == PhoneStats(rows=4, fast_rows=2, fallback_rows=2, fallback_values=1)


def test_small_groups_go_to_libphonenumber(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phones_decide, "MIN_GROUP_ROWS", 3)
    values = pl.Series(["+44 20 7946 0958", "+44 20 7946 0959", "+33 6 12 34 56 78"] * 2)
    frame, stats = normalize_phones_with_stats(values, native=False)  # the polars path's routing
    assert frame.equals(normalize_phones_exact(values))
    assert stats == PhoneStats(rows=6, fast_rows=4, fallback_rows=2, fallback_values=1)


def test_unknown_default_region_goes_to_libphonenumber() -> None:
    values = pl.Series(["+44 20 7946 0958", "020 7946 0958", ""])
    frame, stats = normalize_phones_with_stats(values, default_region="ZZ")
    assert frame.rows() == [
        ("+442079460958", None),
        (None, "invalid_country_code"),
        (None, "empty"),
    ]
    assert stats.fallback_rows == 2


def test_metadata_is_read_from_phonenumbers() -> None:
    us = meta_for("US")
    assert us is not None
    assert us.country_code == 1
    assert meta_for("ZZ") is None
    assert meta_for("001/800") is not None


def test_module_exports() -> None:
    assert set(phones.__all__) == {
        "PHONE_REASONS",
        "PhoneStats",
        "PhoneValidation",
        "normalize_phones",
        "normalize_phones_with_stats",
    }


_ALPHABET = "0123456789" * 3 + " -./()[]+x#;,*~\u00a0\u3000\uff0b\uff10\uff15ー٣extEXT:tel"


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    values=st.lists(st.text(alphabet=_ALPHABET, max_size=24), min_size=1, max_size=40),
    region=st.sampled_from(["US", "GB", "DE", "BR", "JP", "CA", "IT", "AR"]),
    validation=st.sampled_from(["valid", "possible"]),
)
def test_any_text_agrees_with_libphonenumber(
    values: list[str], region: str, validation: str
) -> None:
    series = pl.Series(values, dtype=pl.String)
    got = normalize_phones(series, default_region=region, validation=validation)  # type: ignore[arg-type]
    exact = normalize_phones_exact(series, default_region=region, validation=validation)  # type: ignore[arg-type]
    assert got.equals(exact)


@pytest.mark.parametrize(
    ("pattern", "rust"),
    [
        pytest.param(r"[2-9]\d{9}", "[2-9][0-9]{9}", id="digit-class"),
        pytest.param(r"(?:1[\d]|3)\d?", "(?:1[0-9]|3)[0-9]?", id="digit-in-class"),
    ],
)
def test_patterns_translate_to_ascii_rust(pattern: str, rust: str) -> None:
    assert _phonemeta.to_rust(pattern) == rust


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"(?i)x", id="flags"),
        pytest.param(r"\w+", id="word-class"),
        pytest.param(r"(?=1)1", id="lookahead"),
    ],
)
def test_untranslatable_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(_phonemeta.UnsupportedPattern):
        _phonemeta.to_rust(pattern)


@pytest.mark.parametrize(
    ("pattern", "lengths", "free"),
    [
        pytest.param(r"[2-9]\d{9}", (10,), True, id="exact"),
        pytest.param(r"[2-9]\d{9}|3\d{6}", (10,), False, id="local-only-branch"),
        pytest.param(r"\d{5,7}", (5, 6, 7), True, id="range"),
        pytest.param(r"\d{5,7}", (5, 7), False, id="gap"),
        pytest.param(r"\d+", (5,), False, id="unbounded"),
    ],
)
def test_length_free_patterns(pattern: str, lengths: tuple[int, ...], free: bool) -> None:
    assert _phonemeta._length_free(pattern, lengths) is free
