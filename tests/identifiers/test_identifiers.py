"""Identifier rules: table-driven cases, published vectors, never-crash/never-leak properties."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers.normalize import (
    REJECT_REASONS,
    IdentifierType,
    NormalizeOptions,
    normalize_values,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "public-normalization.jsonl"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
EMAIL = IdentifierType.EMAIL
PHONE = IdentifierType.PHONE
DEVICE = IdentifierType.DEVICE_ID
# "+1 201 555 0123" in full-width forms, as East Asian input methods type it.
FULL_WIDTH = "".join(c if c == " " else chr(ord(c) + 0xFEE0) for c in "+1 201 555 0123")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def one(kind: IdentifierType, value: str | None, **options: Any) -> tuple[str | None, str]:
    ((digest, status),) = normalize_values(kind, [value], NormalizeOptions(**options))
    return digest, status


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        pytest.param("User@Example.com", "user@example.com", id="lowercased"),
        pytest.param("  user@example.com\t", "user@example.com", id="outer-whitespace"),
        pytest.param("\u00a0user@example.com\u2003", "user@example.com", id="unicode-spaces"),
        pytest.param("ÜSER@Bücher.de", "üser@bücher.de", id="unicode-lowercase"),
        pytest.param("İnci@example.com", "i̇nci@example.com", id="dotted-capital-i"),
        pytest.param("a.b+tag@gmail.com", "a.b+tag@gmail.com", id="gmail-untouched-by-default"),
        pytest.param("x@sub.example.co.uk", "x@sub.example.co.uk", id="subdomains"),
    ],
)
def test_valid_emails_hash_their_normalized_form(raw: str, normalized: str) -> None:
    assert one(EMAIL, raw) == (sha(normalized), "hashed")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        pytest.param("J.Doe+News@Gmail.com", "jdoe@gmail.com", id="gmail"),
        pytest.param("j.doe@googlemail.com", "jdoe@googlemail.com", id="googlemail"),
        pytest.param("j.doe+x@example.com", "j.doe+x@example.com", id="other-domains-untouched"),
    ],
)
def test_gmail_canonicalization_is_an_option(raw: str, normalized: str) -> None:
    assert one(EMAIL, raw, gmail_canonical=True) == (sha(normalized), "hashed")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(None, "empty", id="null"),
        pytest.param("", "empty", id="blank"),
        pytest.param("   ", "empty", id="spaces"),
        pytest.param("userexample.com", "malformed", id="no-at"),
        pytest.param("a@b@example.com", "malformed", id="two-ats"),
        pytest.param("@example.com", "malformed", id="empty-local"),
        pytest.param("user@localhost", "malformed", id="undotted-domain"),
        pytest.param("user@example.", "malformed", id="empty-label"),
        pytest.param("us er@example.com", "malformed", id="inner-space"),
        pytest.param("user@exa\u200emple.com", "malformed", id="left-to-right-mark"),
        pytest.param("user@example.com\x1f", "malformed", id="control-char"),
        pytest.param("+tag@gmail.com", "malformed", id="gmail-empty-after-canonical"),
        pytest.param("a" * 65 + "@example.com", "too_long", id="local-part-over-64"),
        pytest.param("a@" + "b" * 250 + ".com", "too_long", id="over-254"),
        pytest.param("a@" + "b" * 10_000_000 + ".com", "too_long", id="ten-megabytes"),
    ],
)
def test_rejected_emails_get_a_reason_and_no_hash(raw: str | None, status: str) -> None:
    assert one(EMAIL, raw, gmail_canonical=True) == (None, status)


#: Emails as exports write them (issue 27), each with the addresses it holds. The expected
#: digests are hashlib's of these strings, not the code's.
MESSY_EMAILS = [
    pytest.param("mailto:ana@example.com", ["ana@example.com"], id="mailto"),
    pytest.param("MAILTO:Ana@Example.com?subject=Hi", ["ana@example.com"], id="mailto-query"),
    pytest.param('"ana"@example.com', ["ana@example.com"], id="quoted-local-part"),
    pytest.param(
        "John Smith <John.Smith@Example.com>", ["john.smith@example.com"], id="display-name"
    ),
    pytest.param("<ana@example.com>", ["ana@example.com"], id="angle-brackets"),
    pytest.param(
        '"Smith, John" <john@example.com>', ["john@example.com"], id="quoted-display-name"
    ),
    pytest.param(
        "ana@example.com;bo@example.com", ["ana@example.com", "bo@example.com"], id="semicolon"
    ),
    pytest.param(
        "ana@example.com, bo@example.com", ["ana@example.com", "bo@example.com"], id="comma"
    ),
    pytest.param(
        "ana@example.com bo@example.com", ["ana@example.com", "bo@example.com"], id="space"
    ),
    pytest.param(
        "Ana <mailto:ANA@example.com>; Bo <bo@example.com>,",
        ["ana@example.com", "bo@example.com"],
        id="list-of-display-names",
    ),
    pytest.param("ANA@EXAMPLE.COM\u200b", ["ana@example.com"], id="zero-width-space"),
    pytest.param("\ufeffan\u200da@exam\u00adple.com", ["ana@example.com"], id="bom-zwj-shy"),
    pytest.param("ana\uff20example.com", ["ana@example.com"], id="fullwidth-at"),
    pytest.param(
        "".join(chr(ord(c) + 0xFEE0) for c in "ANA@EXAMPLE.COM"),
        ["ana@example.com"],
        id="all-fullwidth",
    ),
    pytest.param("ana@example.com.", ["ana@example.com"], id="trailing-dot"),
]


@pytest.mark.parametrize(("raw", "addresses"), MESSY_EMAILS)
def test_messy_email_cells_give_the_addresses_they_hold(raw: str, addresses: list[str]) -> None:
    expected = [(sha(address), "hashed") for address in addresses]
    assert normalize_values(EMAIL, [raw]) == expected


@pytest.mark.parametrize(
    ("raw", "statuses"),
    [
        # A list only when every piece is an address: no stranger's smith@example.com.
        pytest.param("ana smith@example.com", ["malformed"], id="name-then-address"),
        pytest.param("ana@example.com; bo", ["malformed"], id="not-all-addresses"),
        pytest.param("ana@example.com;bo@", ["hashed", "malformed"], id="one-bad-address"),
        pytest.param('"ana smith"@example.com', ["malformed"], id="quotes-needed"),
        pytest.param("mailto:", ["malformed"], id="bare-scheme"),
        pytest.param("John <>", ["malformed"], id="empty-brackets"),
        pytest.param("<ana@example.com> John", ["malformed"], id="name-after"),
        pytest.param("ana@example.com..", ["malformed"], id="two-trailing-dots"),
        pytest.param("a(b)@example.com", ["malformed"], id="comment"),
        pytest.param("ana@[192.0.2.1]", ["malformed"], id="address-literal"),
        pytest.param("\u200b", ["empty"], id="only-invisible"),
        pytest.param(" ;, ", ["malformed"], id="only-separators"),
    ],
)
def test_what_the_repairs_cannot_make_an_address_is_rejected(raw: str, statuses: list[str]) -> None:
    results = normalize_values(EMAIL, [raw])
    assert [status for _, status in results] == statuses
    assert [d for d, _ in results if d is not None] == [sha("ana@example.com")] * (
        statuses.count("hashed")
    )


def test_a_repaired_gmail_address_is_canonicalized_too() -> None:
    raw = "Jane <mailto:Jane.Doe+News@GMail.com>;j.d@googlemail.com."
    results = normalize_values(EMAIL, [raw], NormalizeOptions(gmail_canonical=True))
    assert results == [(sha("janedoe@gmail.com"), "hashed"), (sha("jd@googlemail.com"), "hashed")]


@pytest.mark.parametrize("kind", list(IdentifierType), ids=lambda k: k.key)
def test_sha256_values_pass_through_lowercased_and_are_not_hashed_again(
    kind: IdentifierType,
) -> None:
    digest = sha("someone@example.com")
    assert one(kind, f" {digest.upper()} ") == (digest, "prehashed")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "ABCDEF01-1234-5678-9ABC-DEF012345678",
            (sha("abcdef01-1234-5678-9abc-def012345678"), "hashed"),
            id="idfa-uppercase",
        ),
        pytest.param(
            " 38400000-8cf0-11bd-b23e-10b96e40000d ",
            (sha("38400000-8cf0-11bd-b23e-10b96e40000d"), "hashed"),
            id="gaid",
        ),
        pytest.param(
            "00000000-0000-0000-0000-000000000000", (None, "zeroed"), id="limit-ad-tracking"
        ),
        pytest.param("38400000-8cf0-11bd-b23e", (None, "malformed"), id="truncated"),
        pytest.param("not-a-device", (None, "malformed"), id="garbage"),
        pytest.param("", (None, "empty"), id="blank"),
    ],
)
def test_device_ids(raw: str, expected: tuple[str | None, str]) -> None:
    assert one(DEVICE, raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        pytest.param("(201) 555-0123", "US", "+12015550123", id="us-national"),
        pytest.param("011 44 7400 123456", "US", "+447400123456", id="us-idd"),
        pytest.param("00 44 7400 123456", "DE", "+447400123456", id="00-idd"),
        pytest.param("07400 123456", "GB", "+447400123456", id="gb-trunk-zero"),
        pytest.param("+49 (0)1512 3456789", "US", "+4915123456789", id="de-bracketed-trunk"),
        pytest.param(FULL_WIDTH, "US", "+12015550123", id="full-width"),
        pytest.param("201-555-0123 ext. 42", "US", "+12015550123", id="extension-dropped"),
    ],
)
def test_phones_become_e164_before_hashing(raw: str, region: str, e164: str) -> None:
    assert one(PHONE, raw, default_region=region) == (sha(e164), "hashed")


@pytest.mark.parametrize(
    ("raw", "validation", "status"),
    [
        pytest.param("555-0123", "valid", "invalid_number", id="too-short-for-us"),
        pytest.param("+1 200 555 0123", "valid", "invalid_number", id="invalid-area-code"),
        pytest.param("n/a", "valid", "not_a_number", id="text"),
        pytest.param("+999 1234 5678", "valid", "invalid_country_code", id="unknown-country"),
    ],
)
def test_phone_rejections(raw: str, validation: str, status: str) -> None:
    assert one(PHONE, raw, phone_validation=validation) == (None, status)


def test_emails_at_the_length_limits_are_accepted() -> None:
    local = "a" * 64 + "@example.com"
    assert one(EMAIL, local) == (sha(local), "hashed")
    longest = "a@" + "b" * 248 + ".com"  # 254 characters
    assert one(EMAIL, longest) == (sha(longest), "hashed")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("4155550123.0", id="national-float"),
        pytest.param("+14155550123.0", id="international-float"),
        pytest.param("14155550123.0", id="with-country-code"),
        pytest.param(" 4155550123.0", id="padded"),
    ],
)
def test_spreadsheet_floats_are_read_as_their_digits(raw: str) -> None:
    assert one(PHONE, raw) == (sha("+14155550123"), "hashed")


@pytest.mark.parametrize(
    "raw", ["4.15555E+09", "4.15555e+09", "4,15555E+09", "1e+20", "4E9", "+4.1555501E+10"]
)
def test_scientific_notation_is_rejected_with_its_own_reason(raw: str) -> None:
    assert one(PHONE, raw) == (None, "scientific_notation")


def test_spreadsheet_rules_hold_on_the_c_path_too() -> None:
    """hash_batch takes the C phone path where it is built: same answers as the polars path."""
    import polars as pl

    from spotify_audience_sync.identifiers.normalize import STATUS, hash_batch

    values = ["4155550123.0", "4.15555E+09", "4155550123", "415.555.0123", "4155550123.00"]
    batch = pl.DataFrame({"p": values})
    hashed = hash_batch(batch, {PHONE: "p"}, NormalizeOptions())
    statuses = [STATUS.categories[int(c)] for c in hashed.codes[PHONE]]
    assert statuses == [one(PHONE, v)[1] for v in values]
    assert statuses[:4] == ["hashed", "scientific_notation", "hashed", "hashed"]


def test_possible_validation_keeps_numbers_valid_would_reject() -> None:
    assert one(PHONE, "+1 200 555 0123", phone_validation="valid")[1] == "invalid_number"
    assert one(PHONE, "+1 200 555 0123", phone_validation="possible") == (
        sha("+12005550123"),
        "hashed",
    )


def _vectors() -> list[Any]:
    if not VECTORS.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{VECTORS} not present"))]
    rows = [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines() if line]
    return [pytest.param(row, id=f"{i}-{row['kind']}") for i, row in enumerate(rows)]


@pytest.mark.parametrize("vector", _vectors())
def test_public_normalization_vectors(vector: dict[str, Any]) -> None:
    kind = {"email": EMAIL, "phone": PHONE}[vector["kind"]]
    options = NormalizeOptions(
        gmail_canonical=bool(vector.get("gmail_canonical", False)),
        default_region=vector.get("region", "US"),
    )
    ((digest, status),) = normalize_values(kind, [vector["input"]], options)
    assert digest == vector["sha256"]
    if vector["sha256"] is None:
        assert status in REJECT_REASONS[kind]
    else:
        assert digest == sha(vector["normalized"])


def test_vectors_cover_both_kinds_and_the_gmail_option() -> None:
    if not VECTORS.exists():
        pytest.skip(f"{VECTORS} not present")
    rows = [json.loads(line) for line in VECTORS.read_text(encoding="utf-8").splitlines() if line]
    assert {r["kind"] for r in rows} == {"email", "phone"}
    assert any(r.get("gmail_canonical") for r in rows)
    assert any(r["sha256"] is None for r in rows)


ANY_TEXT = st.one_of(
    st.none(), st.text(max_size=40), st.from_regex(r"\s*[\w.+-]+@[\w-]+\.[a-z]{2,}\s*")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(ANY_TEXT, max_size=25), kind=st.sampled_from(list(IdentifierType)))
def test_normalization_never_raises_and_never_emits_a_raw_value(
    values: list[str | None], kind: IdentifierType
) -> None:
    results = normalize_values(kind, values, NormalizeOptions(gmail_canonical=True))
    # One per value; an email cell holding several addresses gives one per address.
    assert len(results) >= len(values) if kind is EMAIL else len(results) == len(values)
    raw = {value.strip().lower() for value in values if value is not None}
    for digest, status in results:
        if digest is None:
            assert status in REJECT_REASONS[kind]
            continue
        assert status in {"hashed", "prehashed"}
        assert HEX64.match(digest)
        if status == "hashed":
            assert digest not in raw


def test_email_length_limits_hold_on_the_c_path_too() -> None:
    import polars as pl

    from spotify_audience_sync.identifiers.normalize import STATUS, hash_batch

    values = ["a" * 65 + "@example.com", "a" * 64 + "@example.com", "x@" + "y" * 300 + ".io"]
    hashed = hash_batch(pl.DataFrame({"e": values}), {EMAIL: "e"}, NormalizeOptions())
    statuses = [STATUS.categories[int(c)] for c in hashed.codes[EMAIL]]
    assert statuses == ["too_long", "hashed", "too_long"]


@pytest.mark.parametrize("module", ["hashing", "normalize", "emails"])
def test_the_rules_read_no_environment(module: str) -> None:
    """settings.py is the one reader of the environment; the rules take what they need."""
    import importlib
    import inspect

    source = inspect.getsource(
        importlib.import_module(f"spotify_audience_sync.identifiers.{module}")
    )
    assert not re.search(r"\bos\.environ\b|\bgetenv\b", source)
