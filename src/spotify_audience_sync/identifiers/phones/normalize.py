"""Phone numbers to E.164, exactly as libphonenumber (the ``phonenumbers`` package) decides.

The contract of this module is :func:`normalize_phones`: a column of raw strings in, a frame of
``e164`` (``+`` and digits, or null) and ``reason`` (null when kept, else why it was rejected)
out, row for row. Pure: no I/O, nothing logged.

libphonenumber parses ~25,000 values/s per core, far below the rest of the pipeline, so most
values take a vectorized path generated from libphonenumber's own metadata
(:mod:`.metadata`): stage one (:mod:`.fast`) finds the calling code and national
number, stage two (:mod:`.decide`) applies the number's own region. Only the values it
cannot decide exactly (letters, unusual extensions, URIs, odd symbols) are parsed by
libphonenumber itself (:mod:`.exact`), once per distinct value. The differential test
(``tests/identifiers/test_phones_differential.py``) holds the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers.phones import decide as phones_decide
from spotify_audience_sync.identifiers.phones import native as phones_native
from spotify_audience_sync.identifiers.phones.decide import (
    decide_plan,
    decide_routed,
    metas_for_code,
)
from spotify_audience_sync.identifiers.phones.exact import (
    PHONE_REASONS,
    REASON,
    SCHEMA,
    PhoneValidation,
    decide_distinct,
)
from spotify_audience_sync.identifiers.phones.fast import classify, strip_extension
from spotify_audience_sync.identifiers.phones.metadata import meta_for, regions_for_code

__all__ = [
    "PHONE_REASONS",
    "PhoneStats",
    "PhoneValidation",
    "normalize_phones",
    "normalize_phones_with_stats",
]


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
    with_route: bool = False,
    native: bool = True,
    regions: pl.Series | None = None,
) -> pl.DataFrame:
    """Return ``e164`` and ``reason`` for each value, in input order.

    ``default_region`` (ISO 3166 alpha-2) is used for numbers written without a country code;
    ``regions``, when given, is a region per row (null: ``default_region``) that replaces it
    for that row (see :mod:`.country`): a number in international form ignores both.
    ``validation="valid"`` keeps what ``phonenumbers.is_valid_number`` accepts; ``"possible"``
    relaxes that to ``is_possible_number``. With ``with_route``, a boolean ``fallback`` column
    says which values libphonenumber itself decided (the vectorized path could not).
    ``native=False`` skips the C path (:mod:`.native`) for values it already deferred.
    """
    region = default_region.upper()
    e164, reason, _, fallback = _decide(values, region, validation, native, regions)
    frame = _frame(e164, reason)
    return frame.with_columns(fallback=fallback) if with_route else frame


def _frame(e164: pl.Series, reason: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"e164": e164, "reason": reason.cast(pl.String)}, schema=SCHEMA)


def _exact(keys: pl.Series, region: str, validation: PhoneValidation) -> pl.DataFrame:
    return decide_distinct(keys.unique(), region, validation)


def _stage_one(values: pl.Series, region: str, validation: PhoneValidation) -> pl.DataFrame:
    """Stage one, plus stage two for the default region's own rows, in one streaming query.

    Columns: ``row``, ``s`` (the stripped value), ``reason``, ``fallback``, ``group``, ``nsn``,
    ``own`` (decided here), ``e164``, ``loop`` and ``national`` (see :mod:`.decide`).
    """
    default = meta_for(region)
    if default is None:  # not a region libphonenumber knows: everything is its to decide
        stripped = values.cast(pl.String).str.strip_chars()
        empty = pl.col("s").is_null() | (pl.col("s") == "")
        return (
            pl.DataFrame({"s": stripped})
            .with_row_index("row")
            .select(
                "row",
                "s",
                reason=pl.when(empty).then(pl.lit("empty", REASON)),
                fallback=~empty,
                group=pl.lit(0, pl.Int32),
                nsn=pl.lit(None, pl.String),
                own=pl.lit(False),
                e164=pl.lit(None, pl.String),
                loop=pl.lit(False),
                national=pl.lit(None, pl.String),
            )
        )
    code = default.country_code
    metas = metas_for_code(code)
    own_groups = [2 * code + 1]
    if regions_for_code(code)[0] == default.key:
        own_groups.append(2 * code)
    frame = classify(values, default).with_columns(
        own=pl.col("group").is_in(own_groups)
        & pl.col("reason").is_null()
        & ~pl.col("fallback")
        & pl.lit(metas is not None)
    )
    reason = pl.col("reason")
    own_columns: dict[str, pl.Expr] = {
        "e164": pl.lit(None, pl.String),
        "loop": pl.lit(False),
        "national": pl.lit(None, pl.String),
    }
    if metas is not None:
        stages, planned = decide_plan("own_nsn", default.key, validation)
        own_columns = dict(planned)
        frame = frame.with_columns(own_nsn=pl.when("own").then(pl.col("nsn")))
        for stage in stages:
            frame = frame.with_columns(**stage)
        reason = pl.coalesce(reason, own_columns.pop("reason"))
    return (
        frame.select("s", "fallback", "group", "nsn", "own", reason=reason, **own_columns)
        .with_row_index("row")
        .collect(engine="streaming")
    )


#: Status codes the C path reports in: kept, empty, invalid_number, not_a_number.
_KEPT, _EMPTY, _INVALID, _NAN = 0, 1, 2, 3


def _texts(out: npt.NDArray[np.uint8], kept: npt.NDArray[np.bool_]) -> pl.Series:
    """E.164 strings from the C path's fixed-width rows (a length byte, then the digits)."""
    n = len(kept)
    lengths = np.where(kept, out[:, 0], 0).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = out[:, 1:][np.arange(out.shape[1] - 1)[None, :] < lengths[:, None]]
    validity = np.packbits(kept, bitorder="little")
    import nanoarrow as na  # type: ignore[import-untyped,unused-ignore]

    array = na.c_array_from_buffers(
        na.large_string(), n, [validity, offsets, data.tobytes()], null_count=-1
    )
    return pl.Series("e164", array).cast(pl.String)


def _decide_native(
    values: pl.Series, region: str, decided: phones_native.Decided, regions: pl.Series | None
) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series]:
    """:func:`_decide` where the C path decided most values; the rest go the usual way."""
    codes = pl.Series(decided.codes)
    e164 = _texts(decided.out, decided.codes == _KEPT)
    reason = pl.select(
        pl.when(pl.lit(codes) == _EMPTY)
        .then(pl.lit("empty", REASON))
        .when(pl.lit(codes) == _INVALID)
        .then(pl.lit("invalid_number", REASON))
        .when(pl.lit(codes) == _NAN)
        .then(pl.lit("not_a_number", REASON))
        .otherwise(pl.lit(None, REASON))
    ).to_series()
    stripped = values.cast(pl.String).str.strip_chars()
    fallback = pl.Series("fallback", np.zeros(len(values), dtype=bool))
    if decided.deferred:
        rows = pl.Series(np.flatnonzero(decided.codes == phones_native.DEFER))
        sub_regions = None if regions is None else regions.gather(rows)
        sub = _decide(values.gather(rows), region, "valid", False, sub_regions)
        sub_e164, sub_reason, _, sub_fallback = sub
        e164 = e164.scatter(rows, sub_e164)
        reason = reason.scatter(rows, sub_reason)
        fallback = fallback.scatter(rows, sub_fallback)
    return e164, reason, stripped, fallback


Decision = tuple[pl.Series, pl.Series, pl.Series, pl.Series]


def _per_region(
    values: pl.Series,
    region: str,
    validation: PhoneValidation,
    native: bool,
    regions: pl.Series,
) -> Decision:
    """:func:`_decide` with a region per row: each region's rows through its own plan.

    The polars rules and libphonenumber are compiled per default region, so rows are grouped
    by region (a file holds a few dozen) and each group is decided vectorized, as one column.
    """
    groups = (
        pl.DataFrame({"region": regions.fill_null(region)})
        .with_row_index("row")
        .group_by("region")
        .agg("row")
    )
    if groups.height == 1:
        return _decide(values, groups["region"][0], validation, native)
    parts = []
    for key, rows in groups.iter_rows():
        index = pl.Series("row", rows, dtype=pl.UInt32)
        e164, reason, stripped, fallback = _decide(values.gather(index), key, validation, native)
        parts.append(
            pl.DataFrame(
                {"row": index, "e164": e164, "reason": reason.cast(pl.String), "s": stripped}
            ).with_columns(fallback=fallback)
        )
    done = pl.concat(parts).sort("row")
    return done["e164"], done["reason"].cast(REASON), done["s"], done["fallback"]


def _decide(
    values: pl.Series,
    region: str,
    validation: PhoneValidation,
    native: bool = True,
    regions: pl.Series | None = None,
) -> Decision:
    """``e164``, ``reason``, the stripped value and whether libphonenumber had to decide.

    ``regions``: a region per row (null: ``region``); the C path takes them all in one pass.
    """
    if native and validation == "valid" and len(values):
        codes = (_KEPT, _EMPTY, _INVALID, _NAN)
        fast = phones_native.decide(values, region, codes, hashes=False, regions=regions)
        if fast is not None:
            return _decide_native(values, region, fast, regions)
    if regions is not None:
        return _per_region(values, region, validation, native, regions)
    routed = _stage_one(values, region, validation)
    stripped = routed["s"]
    default = meta_for(region)
    if default is None:
        decided = pl.DataFrame(schema={"row": pl.UInt32, "e164": pl.String, "reason": REASON})
        unsupported = pl.Series("row", [], dtype=pl.UInt32)
    else:
        decided, unsupported = decide_routed(routed, default, validation)
    fallback = routed["fallback"]
    if len(unsupported):
        fallback = fallback.scatter(unsupported, True)
    slow = pl.DataFrame({"row": routed["row"], "key": stripped}).filter(fallback)
    # A value with a plain extension parses as its number alone: back through the fast path.
    cores = strip_extension(slow["key"]) if default is not None else slow["key"].clear()
    if cores.is_not_null().sum() >= phones_decide.MIN_GROUP_ROWS:
        ext = slow.with_columns(core=cores).filter(pl.col("core").is_not_null())
        e164, reason, _, sub_fallback = _decide(ext["core"], region, validation, native)
        decided = pl.concat([decided, ext.select("row", e164=e164, reason=reason)])
        fallback = fallback.scatter(ext["row"], sub_fallback)
        slow = slow.filter(cores.is_null())
    if len(slow):
        lookup = _exact(slow["key"], region, validation)
        found = slow.join(lookup, on="key", how="left").select(
            "row", "e164", pl.col("reason").cast(REASON)
        )
        decided = pl.concat([decided, found], how="vertical")
    e164 = routed["e164"].scatter(decided["row"], decided["e164"])
    reason = routed["reason"].scatter(decided["row"], decided["reason"])
    return e164, reason, stripped, fallback


def normalize_phones_with_stats(
    values: pl.Series,
    *,
    default_region: str = "US",
    validation: PhoneValidation = "valid",
    native: bool = True,
    regions: pl.Series | None = None,
) -> tuple[pl.DataFrame, PhoneStats]:
    """:func:`normalize_phones`, plus how many rows the vectorized path could not decide."""
    region = default_region.upper()
    e164, reason, stripped, fallback = _decide(values, region, validation, native, regions)
    fallback_rows = int(fallback.sum())
    stats = PhoneStats(
        rows=len(fallback),
        fast_rows=len(fallback) - fallback_rows,
        fallback_rows=fallback_rows,
        fallback_values=stripped.filter(fallback).n_unique(),
    )
    return _frame(e164, reason), stats
