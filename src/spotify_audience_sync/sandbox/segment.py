"""Deterministic, messy, synthetic segments: for `demo`, the benchmarks and ``fixtures/``.

Vectorized with polars so that generating ten million rows takes seconds, not minutes. Every
value is made up: example.com-style domains and libphonenumber's own example number ranges, so
a generated file holds no one's data (it may be written to disk, unlike a real segment).
"""

from __future__ import annotations

import phonenumbers
import polars as pl

from spotify_audience_sync.identifiers.normalize import sha256_hex

__all__ = ["generate"]

DOMAINS = ["example.com", "example.org", "gmail.com", "googlemail.com", "mail.example.net"]
FIRST = ["ana", "bo", "chen", "dev", "eli", "fatima", "gus", "hana", "ivan", "jo", "kai", "lena"]
LAST = ["smith", "garcia", "müller", "okafor", "tanaka", "silva", "novak", "kowalski", "li"]
REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "AU", "MX"]


def _pick(key: pl.Expr, options: list[str]) -> pl.Expr:
    """A deterministic choice from ``options`` driven by an integer expression.

    A lookup by ``replace_strict``, not ``lit(Series).get(column)``: polars 2.2 accepts only a
    scalar index in ``get`` (a ShapeError otherwise), and ``replace_strict`` works the same
    across the polars versions the package allows.
    """
    return (
        (key % len(options))
        .cast(pl.Int64)
        .replace_strict(list(range(len(options))), options, return_dtype=pl.String)
    )


def _bits(seed: int, salt: int) -> pl.Expr:
    """A stable pseudo-random u64 per row."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64) + salt).hash(seed)


def _phone_table() -> pl.DataFrame:
    rows: list[tuple[str, str, str, str]] = []
    for region in REGIONS:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        assert example is not None, region
        nsn = str(example.national_number)
        trunk = "0" if region not in {"US", "MX", "BR"} else ""
        rows.append((region, str(example.country_code), nsn[:-6], trunk))
    return pl.DataFrame(rows, schema=["region", "cc", "head", "trunk"], orient="row")


def generate(
    rows: int, *, seed: int = 7, phones: bool = True, device_ids: bool = False
) -> pl.DataFrame:
    """A segment of ``rows`` people, ~20% of them repeated with different noise."""
    distinct = max(1, int(rows * 0.8))
    frame = pl.DataFrame({"i": pl.int_range(rows, eager=True, dtype=pl.UInt64)})
    # The first 80% of rows are distinct people; the rest repeat earlier ones, noised anew.
    person = (
        pl.when(pl.col("i") < distinct)
        .then(pl.col("i"))
        .otherwise(pl.col("i").hash(seed) % distinct)
        .alias("person")
    )
    frame = frame.with_columns(person, noise=_bits(seed, 1), junk=_bits(seed, 2) % 1000)
    columns = [_email().alias("Email")]
    if phones:
        columns.append(_phone().alias("phone"))
    if device_ids:
        columns.append(_device_id(seed).alias("device_id"))
    return frame.select(columns)


def _email() -> pl.Expr:
    """An email per person, with case/space noise and a share of blanks and malformed ones."""
    local = pl.format(
        "{}.{}{}",
        _pick(pl.col("person"), FIRST),
        _pick(pl.col("person") // 7, LAST),
        pl.col("person"),
    )
    email = pl.format("{}@{}", local, _pick(pl.col("person") // 3, DOMAINS))
    noisy = (
        pl.when(pl.col("noise") % 5 == 0)
        .then(email.str.to_uppercase())
        .when(pl.col("noise") % 5 == 1)
        .then(pl.format("  {} ", email))
        .when(pl.col("noise") % 5 == 2)
        .then(pl.format("{}\t", email.str.to_titlecase()))
        .otherwise(email)
    )
    return (
        pl.when(pl.col("junk") < 10)
        .then(pl.lit(""))
        .when(pl.col("junk") < 20)
        .then(local)  # no domain: malformed
        .when(pl.col("junk") < 25)
        .then(pl.format("{} @example.com", local))  # inner space: malformed
        .when(pl.col("junk") < 30)
        .then(sha256_hex(email.str.strip_chars().str.to_lowercase()).str.to_uppercase())
        .otherwise(noisy)
    )


def _phone() -> pl.Expr:
    """A phone per person in one of four written styles, with a share of junk."""
    table = _phone_table()
    k = pl.col("person")
    cc = _pick(k, table["cc"].to_list())
    head = _pick(k, table["head"].to_list())
    trunk = _pick(k, table["trunk"].to_list())
    # Six varying digits: phone strings are as diverse as real ones (most are distinct),
    # and a share of them fall outside the region's valid ranges, as in real exports.
    tail = (pl.col("person") * 7919 % 1_000_000).cast(pl.String).str.zfill(6)
    nsn = pl.concat_str(head, tail)
    style = (pl.col("noise") // 5) % 4
    phone = (
        pl.when(style == 0)
        .then(pl.format("+{}{}", cc, nsn))
        .when(style == 1)
        .then(pl.format("+{} {} {}", cc, nsn.str.slice(0, 3), nsn.str.slice(3)))
        .when(style == 2)
        .then(pl.format("011 {} {}", cc, nsn))
        .otherwise(
            pl.when(cc == "1")
            .then(
                pl.format("({}) {}-{}", nsn.str.slice(0, 3), nsn.str.slice(3, 3), nsn.str.slice(6))
            )
            .when(trunk == "")
            .then(pl.format("+{}-{}", cc, nsn))
            .otherwise(pl.format("+{}-({}){}", cc, trunk, nsn))
        )
    )
    return (
        pl.when(pl.col("junk").is_between(100, 139))
        .then(pl.lit(""))
        .when(pl.col("junk").is_between(140, 159))
        .then(pl.format("555-{}", tail.str.slice(0, 4)))  # too short
        .when(pl.col("junk").is_between(160, 169))
        .then(pl.lit("n/a"))
        .otherwise(phone)
    )


def _device_id(seed: int) -> pl.Expr:
    """A UUID-shaped device id per person, upper or lower case, with blanks and all-zero ones."""
    hexes = pl.col("person").hash(seed + 3).cast(pl.String).str.zfill(20)
    uuid = pl.format(
        "{}-{}-4{}-a{}-{}",
        pl.col("person").cast(pl.String).str.zfill(8).str.slice(0, 8),
        hexes.str.slice(0, 4),
        hexes.str.slice(4, 3),
        hexes.str.slice(7, 3),
        hexes.str.slice(8, 12),
    )
    return (
        pl.when(pl.col("junk").is_between(200, 599))
        .then(pl.lit(""))
        .when(pl.col("junk").is_between(600, 609))
        .then(pl.lit("00000000-0000-0000-0000-000000000000"))
        .when(pl.col("noise") % 2 == 0)
        .then(uuid.str.to_uppercase())
        .otherwise(uuid)
    )
