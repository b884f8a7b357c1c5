"""libphonenumber's metadata, read from the installed ``phonenumbers`` and recast for polars.

The vectorized phone path (:mod:`.fast`) must decide exactly what ``phonenumbers`` decides,
so nothing here is hand-written: calling codes, international and national prefixes, transform
rules, number patterns and length rules all come from the package at import time. Upgrading
``phonenumbers`` therefore changes the fast path with it; the differential test keeps them honest.

Patterns are translated from Python ``re`` syntax to the Rust ``regex`` syntax polars uses. The
metadata only uses the common subset (classes, groups, counted repetition, ``$``), where both
engines agree, including leftmost-first alternation. Anything outside that subset marks the
region unsupported, and its numbers go to the exact path.
"""

from __future__ import annotations

import re
import re._parser as re_parser  # type: ignore[import-not-found]
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    COUNTRY_CODES_FOR_NON_GEO_REGIONS,
    REGION_CODE_FOR_NON_GEO_ENTITY,
    SUPPORTED_REGIONS,
    PhoneMetadata,
    ValidationResult,
    phonenumberutil,
)
from phonenumbers.phonenumberutil import _test_number_length

__all__ = [
    "MAX_LENGTH",
    "MAX_NSN",
    "MIN_NSN",
    "PHONENUMBERS_VERSION",
    "RegionMeta",
    "calling_code_pattern",
    "meta_for",
    "regions_for_code",
]

#: Longest input ``phonenumbers.parse`` accepts; every length rule is tabulated up to here.
MAX_LENGTH: int = phonenumberutil._MAX_INPUT_STRING_LENGTH
#: Shortest and longest national significant number ``phonenumbers.parse`` accepts.
MIN_NSN: int = phonenumberutil._MIN_LENGTH_FOR_NSN
MAX_NSN: int = phonenumberutil._MAX_LENGTH_FOR_NSN

#: Number types whose patterns make a number valid (``_number_type_helper``).
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_SAFE_PATTERN = re.compile(r"[0-9\\d\[\]\-(?:){},|?*+$]*")


class UnsupportedPattern(ValueError):
    """A metadata pattern uses syntax we do not translate; its region falls back."""


def to_rust(pattern: str) -> str:
    """Translate a metadata regex to Rust syntax: only ``\\d`` differs (ASCII there, for speed)."""
    if not _SAFE_PATTERN.fullmatch(pattern) or "(?" in pattern.replace("(?:", ""):
        raise UnsupportedPattern(pattern)
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern[i + 1 : i + 2] != "d":
                raise UnsupportedPattern(pattern)
            out.append("0-9" if in_class else "[0-9]")
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def _lengths(values: tuple[int, ...]) -> str:
    """A regex for a two-digit length prefix; the fast path matches ``f"{len:02d}{nsn}"``."""
    if not values:
        return "[0-9]{2}"
    return "(?:" + "|".join(f"{n:02d}" for n in sorted(set(values))) + ")"


def _sequence_lengths(items: Any) -> frozenset[int] | None:
    """Lengths (up to :data:`MAX_NSN`) a parsed regex sequence can match; None if unsure."""
    total = frozenset({0})
    for op, arg in items:
        name = str(op)
        if name in {"LITERAL", "IN", "ANY"}:
            item: frozenset[int] | None = frozenset({1})
        elif name == "AT":
            item = frozenset({0})
        elif name == "SUBPATTERN":
            item = _sequence_lengths(arg[3])
        elif name == "BRANCH":
            branches = [_sequence_lengths(b) for b in arg[1]]
            item = None if any(b is None for b in branches) else frozenset().union(*branches)  # type: ignore[arg-type]
        elif name in {"MAX_REPEAT", "MIN_REPEAT"}:
            item = _repeat_lengths(arg[0], min(arg[1], MAX_NSN), _sequence_lengths(arg[2]))
        else:
            return None
        if item is None:
            return None
        total = frozenset(a + b for a in total for b in item if a + b <= MAX_NSN)
    return total


def _repeat_lengths(low: int, high: int, inner: frozenset[int] | None) -> frozenset[int] | None:
    if inner is None:
        return None
    reps, out = frozenset({0}), set[int]()
    for count in range(high + 1):
        if count >= low:
            out |= reps
        reps = frozenset(a + b for a in reps for b in inner if a + b <= MAX_NSN)
    return frozenset(out)


def _length_free(pattern: str, lengths: tuple[int, ...]) -> bool:
    """True when every string the pattern matches (up to 17 digits) has an allowed length.

    Then libphonenumber's length test adds nothing to the pattern and the fast path can match
    the national number itself instead of a length-prefixed key.
    """
    if not lengths:
        return True
    try:
        matched = _sequence_lengths(re_parser.parse(pattern))
    except re.error:
        return False
    return matched is not None and matched <= set(lengths)


@dataclass(frozen=True)
class RegionMeta:
    """One metadata record (a region, or a non-geographic calling code) in fast-path form."""

    key: str
    country_code: int
    #: ``^(?:international_prefix)(.*)$`` on digits, or None when the region has none; the
    #: prefix itself when it is plain digits (``re.match`` is then ``startswith``).
    idd: str | None
    idd_literal: str | None
    #: ``national_prefix_for_parsing`` (Rust syntax), its group count and transform template.
    national_prefix: str | None
    national_prefix_groups: int
    transform: str | None
    #: ``^(?:general pattern)$``: the viability test of the national-prefix logic (no lengths).
    general: str | None
    #: Validity: general description and the union of number types, matched on the national
    #: number, or on ``f"{len:02d}{nsn}"`` when ``keyed`` (a pattern does not imply its lengths).
    keyed: bool
    valid_general: str | None
    valid_types: str | None
    leading_digits: str | None
    #: Lengths whose ``_test_number_length`` result is in the named set.
    strip_ok_lengths: frozenset[int]
    possible_lengths: frozenset[int]
    too_long_lengths: frozenset[int]


def _desc_regex(desc: object, keyed: bool) -> str | None:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = tuple(getattr(desc, "possible_length", ()) or ())
    return (_lengths(lengths) if keyed else "") + "(?:" + to_rust(pattern) + ")"


def _free(desc: object) -> bool:
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    lengths = tuple(getattr(desc, "possible_length", ()) or ())
    return not pattern or _length_free(pattern, lengths)


def _needs_key(general: object, types: list[object]) -> bool:
    """Whether validity needs the length-prefixed key.

    Not when every type's pattern implies its lengths and those lengths are all lengths of the
    general description: a type match then implies the general length test too.
    """
    if not all(_free(t) for t in types):
        return True
    if _free(general):
        return False
    general_lengths = set(getattr(general, "possible_length", ()) or ())
    for t in types:
        if t is None or not getattr(t, "national_number_pattern", None):
            continue
        lengths = set(getattr(t, "possible_length", ()) or ())
        if not lengths or not lengths <= general_lengths:
            return True
    return False


def _length_sets(metadata: PhoneMetadata) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    """Tabulate libphonenumber's own length test for every length an input can have."""
    results = {n: _test_number_length("0" * n, metadata) for n in range(MAX_LENGTH + 1)}
    strip_ok = {ValidationResult.IS_POSSIBLE, ValidationResult.TOO_LONG}
    possible = {ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY}
    return (
        frozenset(n for n, r in results.items() if r in strip_ok),
        frozenset(n for n, r in results.items() if r in possible),
        frozenset(n for n, r in results.items() if r == ValidationResult.TOO_LONG),
    )


def _build(key: str, metadata: PhoneMetadata) -> RegionMeta:
    m = metadata
    general = getattr(m, "general_desc", None)
    general_pattern = getattr(general, "national_number_pattern", None) or None
    idd = getattr(m, "international_prefix", None)
    npfp = getattr(m, "national_prefix_for_parsing", None) or None
    rule = getattr(m, "national_prefix_transform_rule", None) or None
    groups = re.compile(npfp).groups if npfp else 0
    if rule is not None and (groups == 0 or not re.fullmatch(r"[0-9]*(?:\\[1-9][0-9]*)*", rule)):
        raise UnsupportedPattern(rule)
    descs = [general] + [getattr(m, t, None) for t in _TYPES]
    keyed = _needs_key(general, descs[1:])
    types = [r for r in (_desc_regex(d, keyed) for d in descs[1:]) if r is not None]
    leading = getattr(m, "leading_digits", None)
    strip_ok, possible, too_long = _length_sets(m)
    return RegionMeta(
        key=key,
        country_code=int(getattr(m, "country_code", 0)),
        idd=f"^(?:{to_rust(idd)})(.*)$" if idd else None,
        idd_literal=idd if idd and re.fullmatch("[0-9]+", idd) else None,
        national_prefix=to_rust(npfp) if npfp else None,
        national_prefix_groups=groups,
        transform=re.sub(r"\\([0-9]+)", r"${\1}", rule) if rule else None,
        general=f"^(?:{to_rust(general_pattern)})$" if general_pattern else None,
        keyed=keyed,
        valid_general=f"^{_desc_regex(general, keyed)}$" if general_pattern else None,
        valid_types="^(?:" + "|".join(types) + ")$" if types else None,
        leading_digits=f"^(?:{to_rust(leading)})" if leading is not None else None,
        strip_ok_lengths=strip_ok,
        possible_lengths=possible,
        too_long_lengths=too_long,
    )


@cache
def meta_for(key: str) -> RegionMeta | None:
    """Metadata for a region code or ``"001/<code>"``; None if absent or untranslatable."""
    if key.startswith(REGION_CODE_FOR_NON_GEO_ENTITY + "/"):
        code = int(key.split("/", 1)[1])
        if code not in COUNTRY_CODES_FOR_NON_GEO_REGIONS:
            return None
        metadata = PhoneMetadata.metadata_for_nongeo_region(code, None)
    elif key in SUPPORTED_REGIONS:
        metadata = PhoneMetadata.metadata_for_region(key, None)
    else:
        return None
    if metadata is None:
        return None
    try:
        return _build(key, metadata)
    except (UnsupportedPattern, re.error):
        return None


def _meta_key(region: str, code: int) -> str:
    return f"{region}/{code}" if region == REGION_CODE_FOR_NON_GEO_ENTITY else region


def regions_for_code(code: int) -> tuple[str, ...]:
    """Metadata keys for a calling code, main region first (libphonenumber's order)."""
    return tuple(_meta_key(r, code) for r in COUNTRY_CODE_TO_REGION_CODE.get(code, ()))


@cache
def calling_code_pattern() -> str:
    """``^(cc)`` over every known calling code, shortest first as ``_extract_country_code``
    tries them (the codes are prefix-free today, so at most one matches anyway)."""
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE, key=lambda c: (len(str(c)), c))
    return "^(" + "|".join(str(c) for c in codes) + ")"


#: The version the tables were read from, for benchmark and test output.
PHONENUMBERS_VERSION: str = phonenumbers.__version__
