"""Several columns per identifier type: each hashed by the same rules, pre-hashed ones checked.

An export often has a type in several columns (``Phone``, ``Mobile``, ``Work Phone``): every
valid value is an identifier, and the stage's per-type deduplication removes a value found in
two of them. Each column is one more pass of :func:`~..identifiers.normalize.hash_batch` over
the batch: the rules are vectorized, so a pass costs what reading that column alone would.

In the ``wide`` layout a row's types share one output row. With several columns of a type, the
row's first accepted value of each type (in column order) goes on its first output row; its
second values on a second row, with the cells of types that have no second value left empty;
and so on. A value repeated within one row (the same phone in ``Phone`` and ``Mobile``) is
written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers.normalize import (
    PREHASHED,
    STATUS,
    Extra,
    HashedBatch,
    Hashes,
    IdentifierType,
    NormalizeOptions,
    hash_batch,
)
from spotify_audience_sync.segment.columns import is_hashed_column

__all__ = ["NOT_A_HASH", "STATUS_NAMES", "ColumnHashes", "column_lists", "hash_columns", "slots"]

NOT_A_HASH = "not_a_hash"
#: Every status a value can end in, by code: the rules' statuses, then ``not_a_hash``.
STATUS_NAMES: list[str] = [*STATUS.categories.to_list(), NOT_A_HASH]
_NOT_A_HASH = len(STATUS_NAMES) - 1
_PREHASHED = STATUS_NAMES.index(PREHASHED)
_EMPTY = STATUS_NAMES.index("empty")


def column_lists(
    columns: Mapping[IdentifierType, str | Sequence[str]],
) -> dict[IdentifierType, list[str]]:
    """Each type's columns as a list, whether one name or several was given."""
    return {k: [v] if isinstance(v, str) else list(v) for k, v in columns.items()}


@dataclass
class ColumnHashes:
    """One batch's values, column by column: status codes and digests, row-aligned (filled
    pass by pass by :func:`hash_columns`)."""

    codes: list[tuple[IdentifierType, str, npt.NDArray[np.uint8]]]
    hashes: dict[IdentifierType, list[Hashes]]
    phone_fallback: int
    #: A column's identifiers beyond the first of each cell that held several (emails).
    extra: list[tuple[IdentifierType, str, Extra]] = field(default_factory=list)
    #: Cells each email repair touched (``identifiers/emails.py``), all columns together.
    repairs: dict[str, int] = field(default_factory=dict)
    #: Phones kept with their row's country, and country values that named none.
    phone_row_country: int = 0
    country_unknown: int = 0


def _prehashed_only(
    codes: npt.NDArray[np.uint8], hashes: Hashes
) -> tuple[npt.NDArray[np.uint8], Hashes]:
    """A digest column's values: anything but 64 hex digits or a blank is ``not_a_hash``."""
    wrong = (codes != _EMPTY) & (codes != _PREHASHED)
    if not wrong.any():
        return codes, hashes
    codes = np.where(wrong, np.uint8(_NOT_A_HASH), codes).astype(np.uint8)
    return codes, Hashes(hashes.matrix, hashes.accepted & ~wrong)


def hash_columns(
    batch: pl.DataFrame, lists: Mapping[IdentifierType, list[str]], options: NormalizeOptions
) -> ColumnHashes:
    """The rules and SHA-256 for every identifier column of a batch: one pass per column depth."""
    found = ColumnHashes([], {kind: [] for kind in lists}, 0)
    for depth in range(max((len(names) for names in lists.values()), default=0)):
        wanted = {kind: names[depth] for kind, names in lists.items() if len(names) > depth}
        _add_pass(found, hash_batch(batch, wanted, options), wanted)
    found.codes = [c for kind in lists for c in found.codes if c[0] is kind]
    return found


def _add_pass(found: ColumnHashes, hashed: HashedBatch, wanted: dict[IdentifierType, str]) -> None:
    """One pass of the rules (one column of each type) into the batch's column hashes."""
    found.phone_fallback += hashed.phone_fallback
    found.phone_row_country += hashed.phone_row_country
    # Every pass with a phone column reads the same country column: count its values once.
    found.country_unknown = max(found.country_unknown, hashed.country_unknown)
    for repair, n in hashed.repairs.items():
        found.repairs[repair] = found.repairs.get(repair, 0) + n
    for kind, name in wanted.items():
        kind_codes, kind_hashes = hashed.codes[kind], hashed.hashes[kind]
        if is_hashed_column(name):
            kind_codes, kind_hashes = _prehashed_only(kind_codes, kind_hashes)
        elif kind in hashed.extra:  # a digest column holds one digest a cell: no extras
            found.extra.append((kind, name, hashed.extra[kind]))
        found.codes.append((kind, name, kind_codes))
        found.hashes[kind].append(kind_hashes)


def _compacted(columns: list[Hashes]) -> list[Hashes]:
    """A type's columns → slots: slot ``i`` holds each row's ``i``-th distinct accepted value."""
    if len(columns) == 1:
        return columns
    rows = len(columns[0].accepted)
    accepted = [c.accepted.copy() for c in columns]
    for j in range(1, len(columns)):  # a value already in an earlier column of the row: once
        for k in range(j):
            same = accepted[j] & accepted[k]
            if same.any():
                equal = (columns[j].matrix == columns[k].matrix).all(axis=1)
                accepted[j] &= ~(same & equal)
    rank = np.cumsum(np.stack(accepted), axis=0) - 1
    result = []
    for slot in range(len(columns)):
        matrix = np.zeros_like(columns[0].matrix)
        taken = np.zeros(rows, dtype=np.bool_)
        for j, column in enumerate(columns):
            chosen = accepted[j] & (rank[j] == slot)
            matrix[chosen] = column.matrix[chosen]
            taken |= chosen
        if taken.any():
            result.append(Hashes(matrix, taken))
    return result


def slots(
    hashes: Mapping[IdentifierType, list[Hashes]], kinds: Sequence[IdentifierType]
) -> list[dict[IdentifierType, Hashes]]:
    """The wide layout's output rows per input row: one dict of every type's digests per slot."""
    compact = {kind: _compacted(hashes[kind]) for kind in kinds}
    depth = max((len(v) for v in compact.values()), default=0)
    result = []
    for slot in range(depth):
        row: dict[IdentifierType, Hashes] = {}
        for kind in kinds:
            if slot < len(compact[kind]):
                row[kind] = compact[kind][slot]
            else:
                template = hashes[kind][0]
                row[kind] = Hashes(template.matrix, np.zeros_like(template.accepted))
        result.append(row)
    return result
