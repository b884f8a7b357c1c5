"""The upload file's encoding: hashed identifiers in, ``text/csv`` bytes out. Pure: no I/O.

Two layouts, both read by Spotify's partners:

- ``type-value`` (default): header ``type,value``, one row per identifier.
- ``wide``: one column per identifier type, headed by the type names; one row per person,
  cells left empty where that person has no identifier of the type.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import polars as pl

from spotify_audience_sync.identifiers import IdentifierType, hash_column

__all__ = ["Layout", "encode_rows", "header", "staged_columns", "to_staged_rows"]

Layout = Literal["type-value", "wide"]

# One letter per type in staged rows: staging holds millions of rows, so every byte counts.
_CODES: dict[IdentifierType, str] = {
    IdentifierType.EMAIL: "e",
    IdentifierType.PHONE: "p",
    IdentifierType.DEVICE_ID: "d",
}
_NAMES_BY_CODE = {code: kind.value for kind, code in _CODES.items()}


def staged_columns(layout: Layout, kinds: Sequence[IdentifierType]) -> list[str]:
    """Column names of staged rows for a layout (and the types present)."""
    if layout == "type-value":
        return ["type", "value"]
    return [hash_column(kind) for kind in kinds]


def to_staged_rows(
    normalized: pl.DataFrame, layout: Layout, kinds: Sequence[IdentifierType]
) -> pl.DataFrame:
    """Keep only what gets uploaded: accepted hashes, as rows of the chosen layout.

    The result carries a ``partition`` column (two hex digits of a hash) so that identical rows
    always land in the same partition, which is what makes exact, bounded-memory dedup possible.
    """
    if layout == "type-value":
        parts = [
            normalized.select(type=pl.lit(_CODES[kind]), value=pl.col(hash_column(kind))).filter(
                pl.col("value").is_not_null()
            )
            for kind in kinds
        ]
        rows = (
            pl.concat(parts)
            if parts
            else pl.DataFrame(schema={"type": pl.String, "value": pl.String})
        )
        return rows.with_columns(partition=pl.col("value").str.slice(0, 2))
    columns = staged_columns(layout, kinds)
    rows = normalized.select(columns).filter(pl.any_horizontal(pl.col(columns).is_not_null()))
    return rows.with_columns(partition=pl.coalesce(columns).str.slice(0, 2))


def header(layout: Layout, kinds: Sequence[IdentifierType]) -> bytes:
    """The file's header line."""
    if layout == "type-value":
        return b"type,value\n"
    return (",".join(kind.value for kind in kinds) + "\n").encode()


def encode_rows(rows: pl.DataFrame, layout: Layout) -> bytes:
    """Encode deduplicated staged rows (without header) as CSV bytes with ``\\n`` line ends."""
    if rows.is_empty():
        return b""
    if layout == "type-value":
        rows = rows.with_columns(pl.col("type").replace_strict(_NAMES_BY_CODE))
    buffer = io.BytesIO()
    rows.write_csv(buffer, include_header=False, line_terminator="\n", quote_style="never")
    return buffer.getvalue()


def type_of_code(code: str) -> IdentifierType:
    """The identifier type a staged one-letter code stands for."""
    return IdentifierType(_NAMES_BY_CODE[code])
