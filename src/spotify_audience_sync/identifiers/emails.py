"""Emails as exports write them, repaired into the addresses they hold, before the rules run.

Real cells are messier than one address: ``mailto:ana@example.com`` (hashed as is, it is
accepted and can never match: silent loss), ``John Smith <John.Smith@Example.com>`` from
Outlook and CRM exports, ``"ana"@example.com``, two addresses in one cell, a zero-width space
or a soft hyphen pasted along, a fullwidth at sign (U+FF20), a trailing dot. Each
repair here is one polars expression, applied only to the few cells that need one (a cheap
regex finds them; plain cells keep the plain rules' speed, as the C kernel defers exactly such
cells to this path). The result is one row per address with the cell's row; what is still not
a plausible address is rejected by the rules in :mod:`.normalize`, as before. Which repairs
touched how many cells is counted, never shown: no value leaves this module.
"""

from __future__ import annotations

import polars as pl

__all__ = ["REPAIRS", "UNUSUAL", "pieces", "repair_counts"]

#: Repairs in report order; each counts the cells (values as read) it touched.
REPAIRS = ("unwrapped", "mailto", "split", "unquoted", "invisible", "nfkc", "trailing_dot")

#: A stripped cell that may need a repair: a character other than printable ASCII and the
#: Latin letters NFKC leaves alone (U+00C0-U+017E but U+0132/3, U+013F/U+0140, U+0149), one an
#: unquoted address never holds, or a trailing dot. The C kernel defers such cells too.
UNUSUAL = (
    r"[^\x21-\x7e\x{c0}-\x{131}\x{134}-\x{13e}\x{141}-\x{148}\x{14a}-\x{17e}]"
    r'|[<>"():;,\[\]\\]|\.$'
)

# Zero-width space, non-joiner and joiner, word joiner, BOM, soft hyphen: invisible once
# pasted, yet each changes the hash. (Other format characters stay and are rejected.)
_INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff\u00ad]"
# `Display Name <address>` (the name quoted or not): the address in its place. A name stops
# at a separator, so `a@x.com, B <b@y.com>` keeps both.
_DISPLAY = r'(?:"[^"]*"|[^<>;,"])*<([^<>]*)>'
# A cell's pieces: runs between separators (; , whitespace); empty runs are dropped.
_PIECE = r"[^;,\s]+"
_MAILTO = r"^(?i)mailto:([^?]*)(?:\?.*)?$"  # a query (?subject=...) is not part of the address
# A quoted local part whose quotes change nothing: no character that needs them.
_QUOTED = r'^"([^\s"\\(),:;<>@\[\]]+)"@'
_TRAILING_DOT = r"^(.*@.*[^.@])\.$"


def pieces(stripped: pl.Series) -> pl.DataFrame:
    """Repaired pieces of stripped cells: ``_row`` (the cell's position), ``_s`` (one address,
    or the whole cell when it is not a list of addresses) and one flag per repair.

    A cell is split only when every piece holds an ``@``: ``ana smith@example.com`` stays
    one (malformed) value rather than becoming someone else's ``smith@example.com``.
    """
    cell = pl.col("_c")
    visible = cell.str.replace_all(_INVISIBLE, "")
    frame = (
        pl.DataFrame({"_c": stripped.cast(pl.String)})
        .lazy()
        .with_row_index("_row")
        .with_columns(_v=visible, invisible=visible != cell)
        .with_columns(_k=pl.col("_v").str.normalize("NFKC"))
        .with_columns(nfkc=pl.col("_k") != pl.col("_v"), _k=pl.col("_k").str.strip_chars())
        .with_columns(_u=_unless_emptied(pl.col("_k").str.replace_all(_DISPLAY, " ${1} "), "_k"))
        .with_columns(
            unwrapped=pl.col("_u") != pl.col("_k"), _p=pl.col("_u").str.extract_all(_PIECE)
        )
    )
    each = pl.col("_p")
    is_list = (each.list.len() > 0) & each.list.eval(pl.element().str.contains("@")).list.all()
    frame = frame.with_columns(
        split=is_list & (each.list.len() > 1),
        _p=pl.when(is_list).then(each).otherwise(pl.concat_list(pl.col("_u").str.strip_chars())),
    ).explode("_p")
    piece = pl.col("_p")
    no_scheme = _unless_emptied(piece.str.replace(_MAILTO, "${1}"), "_p")
    unquoted = pl.col("_m").str.replace(_QUOTED, "${1}@")
    undotted = pl.col("_q").str.replace(_TRAILING_DOT, "${1}")
    return (
        frame.with_columns(_m=no_scheme, mailto=no_scheme != piece)
        .with_columns(_q=unquoted, unquoted=unquoted != pl.col("_m"))
        .with_columns(_s=undotted, trailing_dot=undotted != pl.col("_q"))
        .select("_row", "_s", *(pl.col(r).fill_null(False) for r in REPAIRS))
        .collect()
    )


def _unless_emptied(repaired: pl.Expr, before: str) -> pl.Expr:
    """A repair that leaves nothing (``mailto:``, ``John <>``) is undone: the cell was not
    blank, and is rejected as malformed rather than counted as empty."""
    return pl.when(repaired.str.strip_chars() == "").then(pl.col(before)).otherwise(repaired)


def repair_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Cells each repair touched (a cell counts once per repair, whatever its pieces)."""
    touched = (
        frame.group_by("_row")
        .agg(pl.col(r).any() for r in REPAIRS)
        .select(pl.col(r).sum() for r in REPAIRS)
    )
    return {r: int(n) for r, n in touched.row(0, named=True).items() if n}
