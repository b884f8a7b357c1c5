"""One batch's work, on a worker thread: consent, rules and hashes per column, counts, partitions.

Split from :mod:`.pipeline` (which runs batches and encodes the result) so that the work done
per batch reads in one place: which rows count (consent), which columns of each type are read
(:mod:`.columnsets`), and what is counted for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers.normalize import (
    HASHED,
    PREHASHED,
    REJECT_REASONS,
    IdentifierType,
)
from spotify_audience_sync.segment.columns import ColumnRequest, column_label, is_hashed_column
from spotify_audience_sync.segment.columnsets import (
    NOT_A_HASH,
    STATUS_NAMES,
    column_lists,
    hash_columns,
    slots,
)
from spotify_audience_sync.segment.consent import consented
from spotify_audience_sync.segment.encode import Records, to_blocks
from spotify_audience_sync.segment.rejects import BatchRejects
from spotify_audience_sync.segment.report import ColumnCounts, PrepareReport, TypeCounts
from spotify_audience_sync.segment.staging import partition_payload, partition_rows

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PrepareOptions
    from spotify_audience_sync.segment.sources import Source

__all__ = ["Processed", "count_statuses", "merge_counts", "new_report", "process_batch"]

_FIRST_REASON = STATUS_NAMES.index(PREHASHED) + 1  # statuses after hashed and prehashed: rejected
_EMPTY = STATUS_NAMES.index("empty")

Codes = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Processed:
    """What a worker hands back for one batch: rows, staged partitions by group, counts."""

    rows: int
    payloads: list[tuple[int, dict[int, Records]]]
    statuses: dict[IdentifierType, dict[str, int]]
    phone_fallback: int
    rejects: BatchRejects | None = None
    rows_with_identifier: int = 0
    #: Statuses per input column (its name), when a type has several columns.
    per_column: dict[str, dict[str, int]] = field(default_factory=dict)
    short_rows: int = 0
    no_consent: int = 0


def count_statuses(codes: Codes) -> dict[str, int]:
    """How many values ended in each status: a bincount of the status codes."""
    counts = np.bincount(codes, minlength=len(STATUS_NAMES))
    return {STATUS_NAMES[i]: int(n) for i, n in enumerate(counts) if n}


def _rows_with_identifier(codes: list[Codes]) -> int:
    """Rows where at least one value was accepted (hashed or pre-hashed): one vector compare
    and OR per column over the status codes the rules already produced."""
    accepted: npt.NDArray[np.bool_] | None = None
    for column_codes in codes:
        ok = column_codes < _FIRST_REASON
        accepted = ok if accepted is None else np.logical_or(accepted, ok, out=accepted)
    return 0 if accepted is None else int(np.count_nonzero(accepted))


def _rejects(
    parse: Callable[[], pl.DataFrame],
    codes: list[tuple[str, Codes]],
    kept: npt.NDArray[np.int64] | None,
) -> BatchRejects:
    """Where this batch's rejected values are (blank cells are counted, not listed)."""
    parts = []
    for label, column_codes in codes:
        rows = np.flatnonzero((column_codes >= _FIRST_REASON) & (column_codes != _EMPTY))
        parts.append((rows if kept is None else kept[rows], label, column_codes[rows]))
    rows = np.concatenate([r for r, _, _ in parts]) if parts else np.zeros(0, np.int64)
    columns = [label for r, label, _ in parts for _ in range(len(r))]
    reasons = [STATUS_NAMES[code] for _, _, c in parts for code in c.tolist()]
    line_of = getattr(parse, "line_of", None)
    if line_of is not None:  # the source knows each record's exact line
        return BatchRejects(np.asarray(line_of(rows), np.int64), columns, reasons, False)
    return BatchRejects(rows.astype(np.int64), columns, reasons, True)


def _consenting(
    batch: pl.DataFrame, column: str | None
) -> tuple[pl.DataFrame, npt.NDArray[np.int64] | None, int]:
    """The rows with consent (all when no consent column), their indices, how many were not."""
    if column is None:
        return batch, None, 0
    mask = consented(batch[column])
    refused = batch.height - int(mask.sum())
    if not refused:
        return batch, None, 0
    kept = np.flatnonzero(mask.to_numpy()).astype(np.int64)
    return batch.filter(mask), kept, refused


def process_batch(
    parse: Callable[[], pl.DataFrame],
    columns: Mapping[IdentifierType, ColumnRequest],
    options: PrepareOptions,
    labels: Mapping[str, str] | None = None,
) -> Processed:
    """One batch, on a worker thread: parsing, consent, rules and hashes, counts, partitions.

    With ``labels`` (each input column as shown), the rejected values' locations too.
    """
    # Each stage's input is let go as soon as the next stage has what it needs: a batch's
    # peak working set, times the batches in flight, is most of the process's peak memory.
    raw = parse()
    rows = raw.height
    batch, kept, refused = _consenting(raw, options.consent_column)
    del raw
    lists = column_lists(columns)
    hashed = hash_columns(batch, lists, options.normalize)
    del batch
    statuses: dict[IdentifierType, dict[str, int]] = {kind: {} for kind in lists}
    per_column: dict[str, dict[str, int]] = {}
    for kind, name, codes in hashed.codes:
        counted = count_statuses(codes)
        per_column[name] = counted
        for status, n in counted.items():
            statuses[kind][status] = statuses[kind].get(status, 0) + n
    with_identifier = _rows_with_identifier([codes for _, _, codes in hashed.codes])
    rejects = None
    if labels is not None:
        located = [(labels[name], codes) for _, name, codes in hashed.codes]
        rejects = _rejects(parse, located, kept)
    payloads = []
    if options.layout == "type-value":  # a type's group is its place in IdentifierType
        for group, kind in enumerate(IdentifierType):
            for digests in hashed.hashes.get(kind, []):
                payload = partition_rows(digests.matrix, digests.accepted)
                if payload:
                    payloads.append((group, payload))
    else:
        for row in slots(hashed.hashes, list(lists)):
            for block in to_blocks(row, options.layout, list(lists)):
                payloads.append((block.group, partition_payload(block.records, block.partitions)))
    return Processed(
        rows,
        payloads,
        statuses,
        hashed.phone_fallback,
        rejects,
        with_identifier,
        per_column if any(len(names) > 1 for names in lists.values()) else {},
        getattr(parse, "short_rows", 0),
        refused,
    )


def new_report(
    source: Source, columns: Mapping[IdentifierType, ColumnRequest], options: PrepareOptions
) -> PrepareReport:
    """An empty report for ``source`` read through ``columns``: counts are merged into it."""
    lists = column_lists(columns)

    def label(name: str) -> str:
        return column_label(name, source.columns.index(name) + 1)

    def reasons(kind: IdentifierType, names: list[str]) -> dict[str, int]:
        hashed = any(is_hashed_column(n) for n in names)
        return dict.fromkeys((*REJECT_REASONS[kind], *([NOT_A_HASH] if hashed else [])), 0)

    return PrepareReport(
        input=source.name,
        format=source.format,
        layout=options.layout,
        options={
            "default_region": options.normalize.default_region,
            "gmail_canonical": options.normalize.gmail_canonical,
            "phone_validation": options.normalize.phone_validation,
        },
        identifiers={
            kind.key: TypeCounts(
                column=" + ".join(label(n) for n in names),
                rejected=reasons(kind, names),
                columns=(
                    {label(n): ColumnCounts(rejected=reasons(kind, [n])) for n in names}
                    if len(names) > 1
                    else None
                ),
            )
            for kind, names in lists.items()
        },
        consent_column=(
            label(options.consent_column) if options.consent_column in source.columns else None
        ),
    )


def merge_counts(
    done: Processed, columns: Mapping[IdentifierType, ColumnRequest], report: PrepareReport
) -> None:
    """Add one processed batch's counts to ``report`` (the stage write is the caller's)."""
    report.rows_read += done.rows
    report.rows_with_identifier += done.rows_with_identifier
    report.short_rows += done.short_rows
    report.no_consent += done.no_consent
    if IdentifierType.PHONE in columns:
        phone = report.identifiers[IdentifierType.PHONE.key]
        phone.fallback = (phone.fallback or 0) + done.phone_fallback
    for kind, counts in done.statuses.items():
        _add(report.identifiers[kind.key], counts)
    if done.per_column:
        lists = column_lists(columns)
        for kind, names in lists.items():
            entry = report.identifiers[kind.key]
            if entry.columns is None:
                continue
            for name, shown in zip(names, entry.columns, strict=True):
                _add(entry.columns[shown], done.per_column.get(name, {}))


def _add(entry: TypeCounts | ColumnCounts, counts: Mapping[str, int]) -> None:
    for status, n in counts.items():
        if status == HASHED:
            entry.hashed += n
        elif status == PREHASHED:
            entry.prehashed += n
        else:
            entry.rejected[status] = entry.rejected.get(status, 0) + n
