"""Stage two of the vectorized phone path: the number's own region decides.

After :func:`.fast.classify` has found the calling code and the national number, this
module retraces the rest of ``phonenumbers.parse`` (national prefix / transform rule, length
limits) and then ``is_valid_number`` or ``is_possible_number``. The rules differ per region,
so rows are grouped by the metadata record they need; small per-region regexes are much faster
than one alternation over all 245 regions. The default region's own rows are decided inside
stage one's query (see :func:`decide_columns`), the rest here per group.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import polars as pl

from spotify_audience_sync.identifiers.phones.exact import REASON
from spotify_audience_sync.identifiers.phones.fast import Stages, national_prefix_stages
from spotify_audience_sync.identifiers.phones.metadata import (
    MAX_NSN,
    MIN_NSN,
    RegionMeta,
    meta_for,
    regions_for_code,
)

__all__ = [
    "MIN_GROUP_ROWS",
    "decide_columns",
    "decide_plan",
    "decide_routed",
    "metas_for_code",
    "valid_loop",
]

Validation = Literal["valid", "possible"]

#: Fewer rows than this in a metadata group go to libphonenumber: ~40 µs a value there
#: against ~1-2 ms of query planning and regex compilation for a group here.
MIN_GROUP_ROWS = 32

#: Up to this many regions per calling code, validity is one when/then chain over all rows.
_CHAIN_REGIONS = 4
_SCHEMA = pl.Schema({"row": pl.UInt32(), "e164": pl.String(), "reason": REASON})


def metas_for_code(code: int) -> list[RegionMeta] | None:
    """The metadata of every region of a calling code, main first; None if any is missing."""
    metas = [meta_for(k) for k in regions_for_code(code)]
    known = [m for m in metas if m is not None]
    return known if known and len(known) == len(metas) else None


def _accept(nsn: pl.Expr, m: RegionMeta, general: pl.Expr | None = None) -> pl.Expr:
    """``_number_type_helper(...) != UNKNOWN``: the general pattern and some type's pattern.

    ``general``, when given, is the general pattern's match already computed on ``nsn``.
    """
    if m.valid_general is None or m.valid_types is None:
        return pl.lit(False)
    key = nsn.str.len_bytes().cast(pl.String).str.zfill(2) + nsn if m.keyed else nsn
    if general is None or m.keyed:
        general = key.str.contains(m.valid_general)
    return general & key.str.contains(m.valid_types)


def _chain(nsn: pl.Expr, metas: list[RegionMeta], main: pl.Expr) -> tuple[Stages, pl.Expr]:
    """Every region of the calling code in order; ``main`` is the first region's acceptance."""
    others: dict[str, pl.Expr] = {}
    for i, m in enumerate(metas[1:], start=1):
        others[f"v_accept{i}"] = _accept(nsn, m).fill_null(False)
        if m.leading_digits is not None:
            others[f"v_claim{i}"] = nsn.str.contains(m.leading_digits).fill_null(False)
    first = main if metas[0].leading_digits is None else nsn.str.contains(metas[0].leading_digits)
    # Built from the last region back: the first claiming region decides.
    chain: pl.Expr = pl.lit(False)
    for i, m in reversed(list(enumerate(metas[1:], start=1))):
        claim = f"v_claim{i}" if m.leading_digits is not None else f"v_accept{i}"
        chain = pl.when(pl.col(claim)).then(pl.col(f"v_accept{i}")).otherwise(chain)
    chain = pl.when(pl.col("v_first")).then(main).otherwise(chain)
    return [{**others, "v_first": first.fill_null(False)}, {"v_ok": chain}], pl.col("v_ok")


def _validity(
    nsn: pl.Expr, metas: list[RegionMeta], main_general: pl.Expr | None
) -> tuple[Stages, pl.Expr, pl.Expr]:
    """``is_valid_number`` as stages and (valid, needs the per-region loop) expressions.

    libphonenumber gives the number to the first region that claims it (by leading digits,
    or by matching its patterns when it has none), and only that region's patterns count.
    Every regex result is materialized once in a stage: the engines do not share repeated
    subexpressions reliably, and the type patterns are the expensive part.
    """
    main = pl.col("v_main")
    stages: Stages = [{"v_main": _accept(nsn, metas[0], main_general).fill_null(False)}]
    if len(metas) == 1:
        return stages, main, pl.lit(False)
    if len(metas) <= _CHAIN_REGIONS or metas[0].leading_digits is not None:
        chain, ok = _chain(nsn, metas, main)
        return stages + chain, ok, pl.lit(False)
    # Many regions (+1): the main one decides most rows. Of the rest, a row that no region
    # claims by leading digits is claimed by the first of the others that accepts it, so it
    # is valid if any of them does; rows with a leading-digits claim go to the loop.
    leading = [m.leading_digits for m in metas[1:] if m.leading_digits is not None]
    claimed = pl.lit(False)
    if leading:
        rest = pl.when(~main).then(nsn)
        claimed = rest.str.contains("|".join(f"(?:{p})" for p in leading)).fill_null(False)
    stages.append({"v_claimed": claimed})
    unclaimed = pl.when(~main & ~pl.col("v_claimed")).then(nsn)
    others_ok = pl.lit(False)
    for m in metas[1:]:
        if m.leading_digits is None:
            others_ok = others_ok | _accept(unclaimed, m).fill_null(False)
    stages.append({"v_others": others_ok})
    return stages, main | pl.col("v_others"), ~main & pl.col("v_claimed")


def valid_loop(nsn: pl.Series, metas: list[RegionMeta]) -> pl.Series:
    """``is_valid_number`` over every region in order, for the few rows :func:`_validity` left."""
    x = pl.col("nsn")
    stages = [{"v_main": _accept(x, metas[0]).fill_null(False)}]
    chain, ok = _chain(x, metas, pl.col("v_main"))
    frame = pl.DataFrame({"nsn": nsn}).lazy()
    for stage in stages + chain:
        frame = frame.with_columns(**stage)
    return frame.select(ok).collect().to_series()


def decide_columns(
    x: pl.Expr, m: RegionMeta, metas: list[RegionMeta], validation: Validation
) -> tuple[Stages, dict[str, pl.Expr]]:
    """Stage two on national numbers ``x`` (null rows are skipped) under metadata ``m``.

    Returns ``with_columns`` stages and the output expressions ``national``, ``e164``,
    ``reason`` and ``loop`` (validity still open, see :func:`valid_loop`).
    """
    # parse() rejects national numbers under two digits before stripping; only a transform
    # rule (which adds digits) could make stripping change that outcome.
    stripping = pl.when(x.str.len_bytes() >= MIN_NSN).then(x) if m.transform else x
    stages = national_prefix_stages(stripping, m, "np_")
    use_candidate = pl.col("np_strip") & pl.col("np_cand").str.len_bytes().is_in(
        sorted(m.strip_ok_lengths)
    )
    stages.append(
        {
            "national": pl.when(use_candidate).then(pl.col("np_cand")).otherwise(x),
            "general": pl.when(use_candidate).then(pl.col("np_gc")).otherwise(pl.col("np_gx")),
        }
    )
    national = pl.col("national")
    n = national.str.len_bytes()
    checkable = n.is_between(MIN_NSN, MAX_NSN)
    if validation == "possible":
        ok, loop = n.is_in(sorted(metas[0].possible_lengths)), pl.lit(False)
    else:
        # The main region's general pattern already ran on the national number: reuse it.
        known = pl.col("general") if metas[0].key == m.key and not m.keyed else None
        validity, ok, loop = _validity(national, metas, known)
        stages.extend(validity)
    stages.append({"v_okf": ok, "v_loopf": loop})
    ok, loop = pl.col("v_okf"), pl.col("v_loopf")
    outputs = {
        "national": national,
        "e164": pl.when(checkable & ok).then(pl.lit(f"+{m.country_code}") + national),
        "reason": pl.when(national.is_null())
        .then(pl.lit(None, REASON))
        .when(n < MIN_NSN)
        .then(pl.lit("too_short", REASON))
        .when(n > MAX_NSN)
        .then(pl.lit("too_long", REASON))
        .when(~ok.fill_null(False) & ~loop.fill_null(False))
        .then(pl.lit("invalid_number", REASON)),
        "loop": (checkable & loop).fill_null(False),
    }
    return stages, outputs


@cache
def decide_plan(column: str, key: str, validation: Validation) -> tuple[Stages, dict[str, pl.Expr]]:
    """:func:`decide_columns` on ``column`` under metadata ``key``, built once per process."""
    m = meta_for(key)
    metas = None if m is None else metas_for_code(m.country_code)
    if m is None or metas is None:
        raise ValueError(key)
    return decide_columns(pl.col(column), m, metas, validation)


def _decide(part: pl.DataFrame, key: str, validation: Validation) -> pl.LazyFrame:
    stages, outputs = decide_plan("nsn", key, validation)
    frame = part.lazy()
    for stage in stages:
        frame = frame.with_columns(**stage)
    return frame.select("row", **outputs)


def _loop_answers(frame: pl.DataFrame, metas: list[RegionMeta]) -> pl.DataFrame:
    """``row``, ``e164``, ``reason`` for the rows of ``frame`` flagged ``loop``."""
    loop = frame.filter(pl.col("loop"))
    valid = pl.col("valid")
    return loop.with_columns(valid=valid_loop(loop["national"], metas)).select(
        "row",
        e164=pl.when(valid).then(pl.lit(f"+{metas[0].country_code}") + pl.col("national")),
        reason=pl.when(~valid).then(pl.lit("invalid_number", REASON)),
    )


def decide_routed(
    routed: pl.DataFrame,
    default: RegionMeta,
    validation: Validation,
) -> tuple[pl.DataFrame, pl.Series]:
    """Stage two for the routed rows of stage one that it did not decide itself.

    ``routed`` has ``row``, ``reason``, ``fallback``, ``group``, ``nsn``, and ``own`` /
    ``loop`` / ``national`` for the rows decided in stage one's query. Returns ``row``,
    ``e164``, ``reason`` for the rows decided here, and the rows left to the exact path (their
    calling code lacks translatable metadata, or fewer than :data:`MIN_GROUP_ROWS` rows share
    their metadata).
    """
    results = [pl.DataFrame(schema=_SCHEMA)]
    own_loop = routed.select("row", "national", "loop", "own").filter(
        pl.col("own") & pl.col("loop")
    )
    if len(own_loop):
        metas = metas_for_code(default.country_code)
        assert metas is not None  # stage one decides own rows only when they are known
        results.append(_loop_answers(own_loop, metas))
    pending = routed.select("row", "nsn", "group").filter(
        routed["reason"].is_null() & ~routed["fallback"] & ~routed["own"]
    )
    parts = pending.partition_by("group", as_dict=True)
    plans: list[pl.LazyFrame] = []
    plan_metas: dict[int, list[RegionMeta]] = {}
    unsupported: list[pl.Series] = [pl.Series("row", [], dtype=pl.UInt32)]
    for (group,), part in parts.items():
        code, own = divmod(int(str(group)), 2)
        meta = default if own else meta_for(regions_for_code(code)[0])
        metas = metas_for_code(code)
        # A handful of rows costs libphonenumber less than a query (and its regexes) costs us.
        if meta is None or metas is None or len(part) < MIN_GROUP_ROWS:
            unsupported.append(part["row"])
            continue
        plans.append(_decide(part, meta.key, validation).with_columns(code=pl.lit(code)))
        plan_metas[code] = metas
    if plans:
        done = pl.concat(pl.collect_all(plans, engine="streaming"), how="vertical")
        results.append(done.filter(~pl.col("loop")).select("row", "e164", "reason"))
        looping = done.filter(pl.col("loop"))
        for (code,), frame in looping.partition_by("code", as_dict=True).items():
            results.append(_loop_answers(frame, plan_metas[int(str(code))]))
    return pl.concat(results, how="vertical"), pl.concat(unsupported)
