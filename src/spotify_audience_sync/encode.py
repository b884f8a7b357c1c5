"""The upload file's encoding, and the compact records hashes travel in until then. Pure: no I/O.

Two layouts, both read by Spotify's partners:

- ``type-value`` (default): header ``type,value``, one row per identifier.
- ``wide``: one column per identifier type, headed by the type names; one row per person,
  cells left empty where that person has no identifier of the type.

Between hashing and writing, each output row is a fixed-width *record*: one lead byte (the
type's index for ``type-value``, a bit mask of present types for ``wide``) and the 64 hex
characters of each digest. Fixed width is what makes deduplication cheap: numpy sorts a u64
key and compares neighbours instead of parsing and hashing strings. The hex text is kept as is
(decoding it to 32 bytes cost more CPU than the extra staging bytes cost I/O), so encoding the
file is only framing: a type name in front, a newline behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers import (
    HASHED,
    PREHASHED,
    IdentifierType,
    sha256_hex,
    status_column,
    value_column,
)

__all__ = [
    "Layout",
    "Records",
    "deduplicate",
    "encode_records",
    "encoded_size",
    "header",
    "record_width",
    "to_records",
    "written_per_type",
]

Layout = Literal["type-value", "wide"]
Records = npt.NDArray[np.uint8]

_DIGEST = 64  # hex characters per SHA-256
_ORDER = list(IdentifierType)


def record_width(layout: Layout, kinds: Sequence[IdentifierType]) -> int:
    """Bytes per record: a lead byte and one digest (type-value) or one per type (wide)."""
    return 1 + _DIGEST * (1 if layout == "type-value" else len(kinds))


def header(layout: Layout, kinds: Sequence[IdentifierType]) -> bytes:
    """The file's header line."""
    if layout == "type-value":
        return b"type,value\n"
    return (",".join(kind.value for kind in kinds) + "\n").encode()


def _digests(column: pl.Series) -> npt.NDArray[np.uint8]:
    """64-character hex digests (no nulls) → an ``(n, 64)`` matrix of their ASCII bytes."""
    fixed = column.to_frame("h").select(
        pl.col("h").cast(pl.Binary).bin.reinterpret(dtype=pl.Array(pl.UInt8, _DIGEST))
    )
    matrix: npt.NDArray[np.uint8] = fixed.to_series().to_numpy()
    return matrix.reshape(-1, _DIGEST)


def _nibbles(hex_chars: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """ASCII ``0-9a-f`` → values 0-15, by arithmetic (a lookup table is slower in numpy)."""
    result: npt.NDArray[np.uint8] = (hex_chars & 0x0F) + np.uint8(9) * (hex_chars >> 6)
    return result


def _first_byte(hex_chars: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The digest's first byte, from its first two hex characters."""
    pair = _nibbles(hex_chars[:, :2])
    result: npt.NDArray[np.uint8] = (pair[:, 0] << np.uint8(4)) | pair[:, 1]
    return result


def _accepted(
    normalized: pl.DataFrame, kind: IdentifierType
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """Hex digests of a type's accepted values as an ``(n, 64)`` matrix, and which rows they are.

    Every row is hashed in one vectorized call (rejected rows are few and hashing them is
    cheaper than copying the column to blank them out); pre-hashed rows are then overwritten
    with their own digests, so they are never hashed twice.
    """
    value, status = normalized[value_column(kind)], normalized[status_column(kind)]
    hashed = (status == HASHED).to_numpy()
    prehashed = (status == PREHASHED).to_numpy()
    matrix = _digests(
        normalized.select(sha256_hex(pl.col(value_column(kind)).fill_null(""))).to_series()
    )
    if prehashed.any():
        matrix = matrix.copy()
        matrix[prehashed] = _digests(value.filter(pl.Series(prehashed)))
    return matrix, hashed | prehashed


def to_records(
    normalized: pl.DataFrame, layout: Layout, kinds: Sequence[IdentifierType]
) -> tuple[Records, npt.NDArray[np.uint8]]:
    """Accepted hashes → records, plus each record's partition (first byte of its lead digest).

    Identical rows get identical records and the same partition: that is what lets each
    partition be deduplicated on its own.
    """
    if layout == "type-value":
        parts = []
        for kind in kinds:
            matrix, accepted = _accepted(normalized, kind)
            block = np.empty((int(accepted.sum()), 1 + _DIGEST), dtype=np.uint8)
            block[:, 0] = _ORDER.index(kind)
            block[:, 1:] = matrix[accepted]
            parts.append(block)
        records = np.concatenate(parts) if parts else np.empty((0, 1 + _DIGEST), np.uint8)
        return records, _first_byte(records[:, 1:3])
    columns = [_accepted(normalized, kind) for kind in kinds]
    keep = np.logical_or.reduce([accepted for _, accepted in columns])
    records = np.zeros((int(keep.sum()), record_width(layout, kinds)), dtype=np.uint8)
    lead = np.zeros(len(records), dtype=np.uint8)
    for i, (matrix, accepted) in reversed(list(enumerate(columns))):  # first present leads
        mask = accepted[keep]
        start = 1 + _DIGEST * i
        records[mask, start : start + _DIGEST] = matrix[keep][mask]
        records[mask, 0] |= np.uint8(1 << i)
        lead = np.where(mask, _first_byte(records[:, start : start + 2]), lead)
    return records, lead


def _sort_key(records: Records) -> npt.NDArray[np.uint64]:
    """A u64 from the lead digest's first 16 hex digits: uniformly spread, so sorting is cheap."""
    width = records.shape[1]
    if width == 1 + _DIGEST:
        prefix = records[:, 1:17]
    else:  # wide: the first present digest leads
        offsets = np.zeros(len(records), dtype=np.int64)
        for i in reversed(range((width - 1) // _DIGEST)):
            offsets = np.where(records[:, 0] & (1 << i), 1 + _DIGEST * i, offsets)
        prefix = np.take_along_axis(records, offsets[:, None] + np.arange(16), axis=1)
    nibbles = _nibbles(prefix)
    packed = (nibbles[:, 0::2] << np.uint8(4)) | nibbles[:, 1::2]
    return np.ascontiguousarray(packed).view(">u8").ravel().astype(np.uint64)


def deduplicate(records: Records) -> Records:
    """Distinct records in a canonical order, whatever order they came in. Exact.

    Fast path: sort by the u64 key and drop neighbours with equal keys, after checking that
    equal keys really are equal records. If two different records share a key (a 2^-64 event
    for digests, but routine in ``wide`` when one email has several phones), fall back to a
    full byte-wise sort of that partition.
    """
    if len(records) <= 1:
        return records
    key = _sort_key(records)
    order = np.argsort(key, kind="stable")
    ordered, key = records[order], key[order]
    ties = key[1:] == key[:-1]
    if ties.any() and not np.array_equal(ordered[1:][ties], ordered[:-1][ties]):
        width = records.shape[1]
        as_void = np.ascontiguousarray(records).view(np.dtype((np.void, width))).ravel()
        return np.unique(as_void).view(np.uint8).reshape(-1, width)
    return ordered[np.concatenate(([True], ~ties))]


def _lines(cells: list[bytes | npt.NDArray[np.uint8]], n: int) -> bytes:
    """Join fixed-width cells (constant bytes or per-row matrices) into ``n`` text lines."""
    widths = [len(c) if isinstance(c, bytes) else c.shape[1] for c in cells]
    out = np.empty((n, sum(widths) + 1), dtype=np.uint8)
    col = 0
    for cell, width in zip(cells, widths, strict=True):
        out[:, col : col + width] = (
            np.frombuffer(cell, np.uint8) if isinstance(cell, bytes) else cell
        )
        col += width
    out[:, -1] = ord("\n")
    return out.tobytes()


def encode_records(records: Records, layout: Layout, kinds: Sequence[IdentifierType]) -> bytes:
    """Deduplicated records → CSV lines (no header), grouped by type (or by which cells are set)."""
    chunks: list[bytes] = []
    if layout == "type-value":
        for code, kind in enumerate(_ORDER):
            rows = records[records[:, 0] == code]
            if len(rows):
                chunks.append(_lines([f"{kind.value},".encode(), rows[:, 1:]], len(rows)))
        return b"".join(chunks)
    for mask in sorted({int(m) for m in np.unique(records[:, 0])}, reverse=True):
        rows = records[records[:, 0] == mask]
        cells: list[bytes | npt.NDArray[np.uint8]] = []
        for i in range(len(kinds)):
            if i:
                cells.append(b",")
            if mask & (1 << i):
                cells.append(rows[:, 1 + _DIGEST * i : 1 + _DIGEST * (i + 1)])
        chunks.append(_lines(cells, len(rows)))
    return b"".join(chunks)


def encoded_size(records: Records, layout: Layout, kinds: Sequence[IdentifierType]) -> int:
    """Bytes :func:`encode_records` would produce for these records, without producing them."""
    if layout == "type-value":
        counts = np.bincount(records[:, 0], minlength=len(_ORDER))
        return sum(
            int(counts[i]) * (len(kind.value) + 2 + _DIGEST) for i, kind in enumerate(_ORDER)
        )
    present = sum(int(np.count_nonzero(records[:, 0] & (1 << i))) for i in range(len(kinds)))
    return present * _DIGEST + len(records) * len(kinds)  # cells, commas and newlines


def written_per_type(
    records: Records, layout: Layout, kinds: Sequence[IdentifierType]
) -> dict[IdentifierType, int]:
    """How many identifiers of each type a block of records carries."""
    if layout == "type-value":
        counts = np.bincount(records[:, 0], minlength=len(_ORDER))
        return {kind: int(counts[_ORDER.index(kind)]) for kind in kinds}
    return {kind: int(np.count_nonzero(records[:, 0] & (1 << i))) for i, kind in enumerate(kinds)}
