"""The vectorized phone path + fallback must agree with libphonenumber on every string.

A seeded generator builds 200,000+ strings from libphonenumber's own example numbers for 40+
regions and non-geographic codes, in every format ``parse`` accepts and many it rejects: E.164,
international and national formatting, IDD prefixes, trunk prefixes, bare country codes,
punctuation, full-width digits, extensions, letters, RFC 3966, mutated, truncated and padded
digits, random digit and character strings. Each string is decided under three of twelve default
regions (rotating, so each default region sees a quarter of the corpus: 600,000 string/region
pairs) in both validation modes, by :func:`normalize_phones` and by libphonenumber itself (one
``parse`` per string and region serves both modes).

Failures report counts per format category and default region, never the strings.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import cache
from typing import Any, Literal

import phonenumbers
import polars as pl
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.identifiers.phones import decide as phones_decide
from spotify_audience_sync.identifiers.phones import native as phones_native
from spotify_audience_sync.identifiers.phones.exact import normalize_phones_exact, parse_exact_both
from spotify_audience_sync.identifiers.phones.normalize import normalize_phones_with_stats

pytestmark = pytest.mark.slow

SEED = 20261122
CORPUS_SIZE = 200_000
#: Main regions of their calling codes, then regions that share one (CA: +1, KZ: +7), one
#: without a national prefix (IT) and one with a transform rule (AR).
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "CA", "IT", "AR", "KZ")
REGIONS_PER_STRING = 3
SOURCE_REGIONS = (
    *DEFAULT_REGIONS,
    *("CA", "MX", "AR", "CO", "CL", "PE", "IT", "ES", "NL", "BE", "CH", "AT", "SE", "NO", "FI"),
    *("DK", "PL", "PT", "IE", "RU", "KZ", "CN", "KR", "HK", "SG", "ID", "PH", "VN", "TH", "NZ"),
    *("ZA", "NG", "EG", "SA", "AE", "IL", "TR", "PK"),
    # Regions that share a calling code, where leading digits pick the region.
    *("GG", "JE", "IM", "AX", "SJ", "VA", "SM", "CC", "CX", "RE", "YT", "PR", "DO", "JM", "BB"),
    *("MA", "EH", "KY", "GP", "BL", "CW", "BQ"),
)
NON_GEO_CODES = (800, 808, 870, 878, 881, 882, 883, 888, 979)
IDD_PREFIXES = ("00", "011", "0011", "810", "001", "010", "0015", "000", "00 ", "011 ")
SEPARATORS = (" ", " ", "-", ".", "/", "(", ")", "\u00a0", "\u2013", "\uff0d", "\u3000", "  ")
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
EXTENSIONS = (" ext. ", " x", " X ", "#", " ext ", ";ext=", ",,", ",", " ~", " int ", " доб ")
JUNK = "abcxyzABCXYZ+#*;,~_:'\"!?@&%$<>{}|\\^`=\t\n\u00ad\u200b\u2060ー٣۴१"

Validation = Literal["valid", "possible"]


def _bases() -> list[tuple[str, int, str]]:
    """(region, calling code, national significant number) for every example number."""
    bases: list[tuple[str, int, str]] = []
    for region in SOURCE_REGIONS:
        numbers = [
            phonenumbers.example_number_for_type(region, t) for t in PhoneNumberType.values()
        ]
        numbers.append(phonenumbers.invalid_example_number(region))
        for number in numbers:
            if number is not None:
                nsn = phonenumbers.national_significant_number(number)
                bases.append((region, number.country_code, nsn))
    for code in NON_GEO_CODES:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            bases.append(("001", code, phonenumbers.national_significant_number(number)))
    return bases


def _mutate_digits(rng: random.Random, nsn: str) -> str:
    """Keep the leading digits (so many stay valid), change, drop or add some after them."""
    digits = list(nsn)
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        digits[rng.randrange(min(2, len(digits)), len(digits))] = str(rng.randrange(10))
    roll = rng.random()
    if roll < 0.1 and len(digits) > 3:
        del digits[rng.randrange(2, len(digits))]
    elif roll < 0.2:
        digits.insert(rng.randrange(2, len(digits) + 1), str(rng.randrange(10)))
    elif roll < 0.25:
        digits = digits[: rng.randrange(0, 5)]
    elif roll < 0.3:
        digits += [str(rng.randrange(10)) for _ in range(rng.randrange(1, 12))]
    return "".join(digits)


def _punctuate(rng: random.Random, digits: str) -> str:
    out = []
    for ch in digits:
        out.append(ch)
        if rng.random() < 0.3:
            out.append(rng.choice(SEPARATORS))
    return "".join(out)


@cache
def _national_prefix(region: str) -> str:
    if region == "001":
        return ""
    return phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""


def _format(rng: random.Random, region: str, code: int, nsn: str) -> tuple[str, str]:
    """One string for a number, and the name of its format category."""
    meta_prefix = _national_prefix(region)
    kind = rng.choice(
        (
            "e164", "e164", "intl", "intl", "national", "national", "trunk", "trunk", "bare",
            "idd", "idd", "cc_no_plus", "cc_trunk", "plus_trunk", "punct", "punct", "fullwidth",
            "extension", "letters", "rfc3966", "plus_odd", "spaces", "junk_edit",
        )
    )  # fmt: skip
    e164 = f"+{code}{nsn}"
    if kind == "e164":
        return e164, kind
    if kind in {"intl", "national"} and len(nsn) >= 2:
        number = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn))
        if nsn.startswith("0"):
            number.italian_leading_zero = True
            number.number_of_leading_zeros = len(nsn) - len(nsn.lstrip("0")) or 1
        fmt = PhoneNumberFormat.INTERNATIONAL if kind == "intl" else PhoneNumberFormat.NATIONAL
        return phonenumbers.format_number(number, fmt), kind
    if kind in {"intl", "national", "bare"}:
        return nsn, "bare"
    if kind == "trunk":
        return _punctuate(rng, meta_prefix + nsn), kind
    if kind == "idd":
        return rng.choice(IDD_PREFIXES) + _punctuate(rng, f"{code}{nsn}"), kind
    if kind == "cc_no_plus":
        return rng.choice(("", " ", "-")).join((str(code), nsn)), kind
    if kind == "cc_trunk":
        return f"{code}{meta_prefix}{nsn}", kind
    if kind == "plus_trunk":
        return rng.choice((f"+{code} ({meta_prefix}) {nsn}", f"+{code}{meta_prefix}{nsn}")), kind
    if kind == "punct":
        return _punctuate(rng, rng.choice((e164, meta_prefix + nsn, nsn))), kind
    if kind == "fullwidth":
        return _punctuate(rng, rng.choice((e164, meta_prefix + nsn))).translate(FULLWIDTH), kind
    if kind == "extension":
        ext = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 8)))
        return rng.choice((e164, meta_prefix + nsn)) + rng.choice(EXTENSIONS) + ext, kind
    if kind == "letters":
        chars = list(rng.choice((e164, meta_prefix + nsn))) or ["0"]
        for _ in range(rng.randrange(1, 5)):
            chars[rng.randrange(len(chars))] = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabc")
        return rng.choice(("", "Tel: ", "phone ")) + "".join(chars), kind
    if kind == "rfc3966":
        return rng.choice((f"tel:{e164}", f"tel:{nsn};phone-context=+{code}")), kind
    if kind == "plus_odd":
        return rng.choice(
            (f"++{code}{nsn}", f"+ {code} {nsn}", f"(+{code}) {nsn}", f"+0{code}{nsn}",
             f"+00{code}{nsn}", f"+011{code}{nsn}", f"+{nsn}", f"{nsn}+", f"+({code}){nsn}")
        ), kind  # fmt: skip
    if kind == "spaces":
        pad = rng.choice(("", " ", "\t", "\n", "\u00a0", "\u3000", "\x1c"))
        return pad + _punctuate(rng, rng.choice((e164, nsn))) + pad[::-1], kind
    chars = list(rng.choice((e164, meta_prefix + nsn)))
    chars.insert(rng.randrange(len(chars) + 1), rng.choice(JUNK))
    return "".join(chars), "junk_edit"


def _random_string(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.6:
        digits = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(0, 21)))
        return rng.choice(("", "", "+", "0", "00", "+0", " ")) + digits, "random_digits"
    if roll < 0.95:
        alphabet = "0123456789" * 4 + "+()-. /x#*;,abcXYZ\u00a0\uff10\uff11"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 25))), "random_chars"
    return "1" * rng.choice((249, 250, 251, 260)), "very_long"


def _corpus() -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    bases = _bases()
    corpus: list[tuple[str, str]] = []
    while len(corpus) < CORPUS_SIZE:
        if rng.random() < 0.12:
            corpus.append(_random_string(rng))
            continue
        region, code, nsn = rng.choice(bases)
        if rng.random() < 0.6:
            nsn = _mutate_digits(rng, nsn)
        corpus.append(_format(rng, region, code, nsn))
    return corpus


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    return _corpus()


def test_corpus_covers_the_brief(corpus: list[tuple[str, str]]) -> None:
    categories = Counter(category for _, category in corpus)
    assert len(corpus) >= CORPUS_SIZE
    assert len(set(SOURCE_REGIONS)) >= 25
    assert min(categories.values()) > 200, categories


@pytest.fixture(scope="module", params=DEFAULT_REGIONS)
def decided(request: pytest.FixtureRequest, corpus: list[tuple[str, str]]) -> tuple:
    """The share of the corpus checked under one default region, decided by libphonenumber."""
    region: str = request.param
    slot = DEFAULT_REGIONS.index(region)
    step = len(DEFAULT_REGIONS) // REGIONS_PER_STRING
    offsets = [(slot - k * step) % len(DEFAULT_REGIONS) for k in range(REGIONS_PER_STRING)]
    picked = [item for i, item in enumerate(corpus) if i % len(DEFAULT_REGIONS) in offsets]
    values = pl.Series([v for v, _ in picked], dtype=pl.String)
    stripped = values.str.strip_chars().to_list()
    cache: dict[str, dict] = {}
    for raw in stripped:
        if raw and raw not in cache:
            cache[raw] = parse_exact_both(raw, region)
    expected: dict[str, list[tuple[str | None, str | None]]] = {"valid": [], "possible": []}
    for raw in stripped:
        for mode in ("valid", "possible"):
            expected[mode].append(cache[raw][mode] if raw else (None, "empty"))
    return region, values, [c for _, c in picked], expected


@pytest.mark.parametrize(
    ("validation", "native"),
    [("valid", True), ("valid", False), ("possible", False)],
    ids=["valid-C", "valid-polars", "possible-polars"],
)
def test_fast_path_agrees_with_libphonenumber(
    decided: tuple, validation: Validation, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both fast paths: the C one (valid mode only; what it defers goes to polars) and the
    polars one on its own (where the extension is not built, and in possible mode)."""
    if native and hashing.native_module() is None:
        pytest.skip("the C extension is not built here")
    # Every metadata group takes the vectorized path, however few rows it has here.
    monkeypatch.setattr(phones_decide, "MIN_GROUP_ROWS", 1)
    region, values, categories, expected = decided
    frame, stats = normalize_phones_with_stats(
        values, default_region=region, validation=validation, native=native
    )
    got = list(zip(frame["e164"].to_list(), frame["reason"].to_list(), strict=True))
    mismatches = Counter(
        category
        for category, g, e in zip(categories, got, expected[validation], strict=True)
        if g != e
    )
    assert not mismatches, f"{sum(mismatches.values())} mismatches under {region}: {mismatches}"
    assert stats.fallback_share < 0.35


#: Rows of the corpus checked with a region per row (and some rows with none: the default).
ROW_REGION_ROWS = 40_000


@pytest.fixture(scope="module")
def decided_per_row(corpus: list[tuple[str, str]]) -> tuple:
    """A slice of the corpus, each row with its own region (a tenth null: the default, GB),
    decided by libphonenumber under that row's region."""
    rng = random.Random(SEED + 1)
    picked = corpus[:ROW_REGION_ROWS]
    regions = [rng.choice(DEFAULT_REGIONS) if rng.random() > 0.1 else None for _ in picked]
    values = pl.Series([v for v, _ in picked], dtype=pl.String)
    stripped = values.str.strip_chars().to_list()
    cache: dict[tuple[str, str], dict] = {}
    expected: dict[str, list[tuple[str | None, str | None]]] = {"valid": [], "possible": []}
    for raw, region in zip(stripped, regions, strict=True):
        key = (raw, region or "GB")
        if raw and key not in cache:
            cache[key] = parse_exact_both(*key)
        for mode in ("valid", "possible"):
            expected[mode].append(cache[key][mode] if raw else (None, "empty"))
    row_regions = pl.Series(regions, dtype=pl.String)
    return values, row_regions, [c for _, c in picked], expected


def _per_row_mismatches(
    decided: tuple, default_region: str, validation: Validation, native: bool
) -> tuple[Counter[str], Any]:
    """Rows (by category) whose answer, each under its own region, differs from the reference."""
    values, regions, categories, expected = decided
    frame, stats = normalize_phones_with_stats(
        values, default_region=default_region, validation=validation, native=native,
        regions=regions,
    )  # fmt: skip
    got = list(zip(frame["e164"].to_list(), frame["reason"].to_list(), strict=True))
    mismatches = Counter(
        category
        for category, g, e in zip(categories, got, expected[validation], strict=True)
        if g != e
    )
    return mismatches, stats


@pytest.mark.parametrize(
    ("validation", "native"),
    [("valid", True), ("valid", False), ("possible", False)],
    ids=["valid-C", "valid-polars", "possible-polars"],
)
def test_a_region_per_row_agrees_with_libphonenumber(
    decided_per_row: tuple, validation: Validation, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path with a region per row (the C kernel's row ids, the polars rules and
    libphonenumber per region group) gives each row what its own region gives."""
    if native and hashing.native_module() is None:
        pytest.skip("the C extension is not built here")
    monkeypatch.setattr(phones_decide, "MIN_GROUP_ROWS", 1)
    values, regions, _, expected = decided_per_row
    mismatches, stats = _per_row_mismatches(decided_per_row, "GB", validation, native)
    assert not mismatches, f"{sum(mismatches.values())} mismatches: {mismatches}"
    assert stats.fallback_share < 0.35
    reference = normalize_phones_exact(
        values, default_region="GB", validation=validation, regions=regions
    )
    assert reference.rows() == [(e, r) for e, r in expected[validation]]


# --- national numbers that start with the default region's own calling code ------------------
# "1-201-555-0123" in the US, "44 20 7946 0958" in GB: libphonenumber takes the code off when
# the rest (its national prefix stripped) is a better national number, or the whole is too
# long; the C kernel decides these itself. Each string is checked under the region it was made
# for, as the rotation above rarely pairs a code with its own region.

#: Main regions and regions that share their code (CA, PR, JM: +1; GG: +44; VA: +39; KZ: +7;
#: AX: +358; YT: +262), no national prefix (IT, MX, UZ), prefixes that meet the code (RU and
#: KZ '8', HU '06', BY '0|80?', LT '[08]', GB '0|180020'), and patterns the kernel defers
#: (AR, BR, JP, AU, CN, CO, KR: carrier codes, transform rules, pattern IDDs).
DCC_REGIONS = (
    *("US", "CA", "PR", "JM", "GB", "GG", "DE", "FR", "IT", "VA", "IN", "BR", "AU", "JP"),
    *("MX", "RU", "KZ", "HU", "AR", "NL", "ES", "CN", "BY", "LT", "UZ", "MN", "CO", "KR"),
    *("TW", "CH", "AT", "PL", "BE", "SE", "FI", "AX", "ZA", "NG", "EG", "ID", "PH", "RE"),
    *("YT", "IE", "PT", "NZ", "SG", "IL", "TR", "PK"),
)
#: Regions whose national prefix is a plain digit string or absent: the kernel decides almost
#: every plain string of the code and a number (the rest: too long or too short for it).
DCC_DECIDED_IN_C = ("US", "CA", "PR", "GB", "DE", "FR", "IT", "IN", "MX", "RU", "KZ", "HU", "NL")
_PLAIN = re.compile(r"[0-9 .()/-]+")
DCC_ROWS = 48_000


@cache
def _code_bases(region: str) -> tuple[str, ...]:
    """National significant numbers of every example number of the region's calling code."""
    code = phonenumbers.country_code_for_region(region)
    found: list[str] = []
    for other in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
        numbers = [phonenumbers.example_number_for_type(other, t) for t in PhoneNumberType.values()]
        numbers.append(phonenumbers.invalid_example_number(other))
        found.extend(phonenumbers.national_significant_number(n) for n in numbers if n)
    return tuple(found)


def _random_digits(rng: random.Random, low: int, high: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(rng.randrange(low, high + 1)))


def _dcc_digits(rng: random.Random, code: str, prefix: str, nsn: str) -> tuple[str, str]:
    """Digits that start with the calling code, and their category."""
    kind = rng.choice(
        (
            "code_nsn", "code_nsn", "code_nsn", "code_trunk_nsn", "code_trunk_nsn",
            "code_trunk_trunk", "code_code_nsn", "trunk_code_nsn", "code_zero_nsn", "code_short",
            "code_long", "code_random", "code_only", "code_one_digit",
        )
    )  # fmt: skip
    if kind == "code_nsn":
        return code + nsn, kind
    if kind == "code_trunk_nsn":
        return code + prefix + nsn, kind
    if kind == "code_trunk_trunk":
        return code + prefix + prefix + nsn, kind
    if kind == "code_code_nsn":
        return code + code + nsn, kind
    if kind == "trunk_code_nsn":  # starts with the code only where the prefix is empty
        return prefix + code + nsn, kind
    if kind == "code_zero_nsn":
        return code + "0" + nsn, kind
    if kind == "code_short":
        return code + nsn[: rng.randrange(len(nsn) + 1)], kind
    if kind == "code_long":
        return code + nsn + _random_digits(rng, 1, 8), kind
    if kind == "code_random":
        return code + _random_digits(rng, 0, 18), kind
    if kind == "code_only":
        return code, kind
    return code + _random_digits(rng, 1, 1), kind


def _dcc_string(rng: random.Random, region: str) -> tuple[str, str]:
    """One national-form string that starts with the region's calling code, and its category."""
    code = str(phonenumbers.country_code_for_region(region))
    nsn = rng.choice(_code_bases(region))
    if rng.random() < 0.5:
        nsn = _mutate_digits(rng, nsn)
    digits, kind = _dcc_digits(rng, code, _national_prefix(region), nsn)
    roll = rng.random()
    if roll < 0.4:
        return digits, kind
    if roll < 0.7:
        return _punctuate(rng, digits), kind
    rest = digits[len(code) :]
    if roll < 0.8 and len(rest) == 10:  # the US forms: 1-201-555-0123, 1 (201) 555-0123
        a, b, c = rest[:3], rest[3:6], rest[6:]
        return rng.choice((f"{code}-{a}-{b}-{c}", f"{code} ({a}) {b}-{c}")), kind
    if roll < 0.9 and rest:  # the region's own national formatting after the code
        number = phonenumbers.PhoneNumber(country_code=int(code), national_number=int(rest))
        if rest.startswith("0"):
            number.italian_leading_zero = True
            number.number_of_leading_zeros = len(rest) - len(rest.lstrip("0")) or 1
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        return f"{code} {national}", kind
    return rng.choice((" ", "-", ".", "/")).join((code, rest)), kind


@pytest.fixture(scope="module")
def dcc_decided() -> tuple:
    """Strings that start with their region's calling code, a region per row, each decided by
    libphonenumber under that region."""
    rng = random.Random(SEED + 2)
    regions = [DCC_REGIONS[i % len(DCC_REGIONS)] for i in range(DCC_ROWS)]
    made = [_dcc_string(rng, region) for region in regions]
    values = pl.Series([v for v, _ in made], dtype=pl.String)
    cache: dict[tuple[str, str], dict] = {}
    expected: dict[str, list[tuple[str | None, str | None]]] = {"valid": [], "possible": []}
    for raw, region in zip(values.str.strip_chars().to_list(), regions, strict=True):
        key = (raw, region)
        if raw and key not in cache:
            cache[key] = parse_exact_both(*key)
        for mode in ("valid", "possible"):
            expected[mode].append(cache[key][mode] if raw else (None, "empty"))
    categories = [f"{kind}/{region}" for (_, kind), region in zip(made, regions, strict=True)]
    return values, pl.Series(regions, dtype=pl.String), categories, expected


def test_the_default_code_corpus_covers_the_brief(dcc_decided: tuple) -> None:
    _, _, categories, expected = dcc_decided
    kinds = Counter(c.split("/")[0] for c in categories)
    assert min(kinds.values()) > 1_000, kinds
    # Both outcomes for many regions: the code taken off (kept as +<code>...) and not.
    kept = [c for c, (e164, _) in zip(categories, expected["valid"], strict=True) if e164]
    assert len({c.split("/")[1] for c in kept}) >= 40
    assert 0.2 < len(kept) / len(categories) < 0.8


@pytest.mark.parametrize(
    ("validation", "native"),
    [("valid", True), ("valid", False), ("possible", False)],
    ids=["valid-C", "valid-polars", "possible-polars"],
)
def test_default_code_forms_agree_with_libphonenumber(
    dcc_decided: tuple, validation: Validation, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path, each row under its own region: the answer libphonenumber gives."""
    if native and hashing.native_module() is None:
        pytest.skip("the C extension is not built here")
    monkeypatch.setattr(phones_decide, "MIN_GROUP_ROWS", 1)
    mismatches, _ = _per_row_mismatches(dcc_decided, "US", validation, native)
    assert not mismatches, f"{sum(mismatches.values())} mismatches: {mismatches}"


def test_the_kernel_decides_default_code_forms_itself(dcc_decided: tuple) -> None:
    """The C kernel's own answers (nothing deferred to polars behind it): equal to
    libphonenumber's wherever it answers, and it answers nearly every row of the regions
    whose national prefix it can follow."""
    if hashing.native_module() is None:
        pytest.skip("the C extension is not built here")
    values, regions, categories, expected = dcc_decided
    reasons = {1: "empty", 2: "invalid_number", 3: "not_a_number"}
    decided = phones_native.decide(values, "US", (0, 1, 2, 3), hashes=False, regions=regions)
    assert decided is not None
    mismatches: Counter[str] = Counter()
    plain, deferred = Counter[str](), Counter[str]()
    for i, (value, category) in enumerate(zip(values.to_list(), categories, strict=True)):
        kind, region = category.split("/")
        status = int(decided.codes[i])
        if kind in {"code_nsn", "code_trunk_nsn"} and _PLAIN.fullmatch(value):
            plain[region] += 1
            deferred[region] += status == phones_native.DEFER
        if status == phones_native.DEFER:
            continue
        if status == 0:  # kept: E.164 text, a length byte first
            out = decided.out[i]
            got: tuple[str | None, str | None] = (bytes(out[1 : 1 + out[0]]).decode(), None)
        else:
            got = (None, reasons[status])
        if got != expected["valid"][i]:
            mismatches[category] += 1
    assert not mismatches, f"{sum(mismatches.values())} mismatches: {mismatches}"
    shares = {region: deferred[region] / plain[region] for region in DCC_DECIDED_IN_C}
    assert max(shares.values()) < 0.05, shares
