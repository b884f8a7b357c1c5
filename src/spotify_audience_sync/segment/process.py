"""One batch's work, on a worker thread: consent, rules and hashes per column, counts, partitions.

Split from :mod:`.pipeline` (which runs batches and encodes the result) so that the work done
per batch reads in one place: which rows count (consent), which columns of each type are read
(:mod:`.columnsets`), and what is counted for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.identifiers.emails import REPAIRS
from spotify_audience_sync.identifiers.normalize import (
    HASHED,
    PREHASHED,
    REJECT_REASONS,
    Extra,
    Hashes,
    IdentifierType,
)
from spotify_audience_sync.segment.columns import ColumnRequest, column_label, is_hashed_column
from spotify_audience_sync.segment.columnsets import (
    NOT_A_HASH,
    STATUS_NAMES,
    ColumnHashes,
    column_lists,
    hash_columns,
    slots,
)
from spotify_audience_sync.segment.consent import consented
from spotify_audience_sync.segment.encode import Block, Layout, Records, to_blocks
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
    repairs: dict[str, int] = field(default_factory=dict)
    phone_row_country: int = 0
    country_unknown: int = 0


def count_statuses(codes: Codes, extra: Codes | None = None) -> dict[str, int]:
    """How many identifiers ended in each status: a bincount of the status codes (each row's
    first identifier's, and ``extra``: the other identifiers of cells that held several)."""
    counts = np.bincount(codes, minlength=len(STATUS_NAMES))
    if extra is not None and len(extra):
        counts = counts + np.bincount(extra, minlength=len(STATUS_NAMES))
    return {STATUS_NAMES[i]: int(n) for i, n in enumerate(counts) if n}


def _rows_with_identifier(codes: list[Codes], extra: list[Extra]) -> int:
    """Rows where at least one value was accepted (hashed or pre-hashed): one vector compare
    and OR per column over the status codes the rules already produced."""
    accepted: npt.NDArray[np.bool_] | None = None
    for column_codes in codes:
        ok = column_codes < _FIRST_REASON
        accepted = ok if accepted is None else np.logical_or(accepted, ok, out=accepted)
    if accepted is None:
        return 0
    for more in extra:  # a row whose first address was rejected, say
        accepted[more.rows[more.codes < _FIRST_REASON]] = True
    return int(np.count_nonzero(accepted))


def _rejects(
    parse: Callable[[], pl.DataFrame],
    codes: list[tuple[str, Codes]],
    kept: npt.NDArray[np.int64] | None,
    extra: Sequence[tuple[str, Extra]] = (),
) -> BatchRejects:
    """Where this batch's rejected values are (blank cells are counted, not listed)."""
    parts = []
    for label, column_codes in codes:
        rows = np.flatnonzero((column_codes >= _FIRST_REASON) & (column_codes != _EMPTY))
        parts.append((rows if kept is None else kept[rows], label, column_codes[rows]))
    for label, more in extra:  # a cell's other addresses, on its line
        rejected = (more.codes >= _FIRST_REASON) & (more.codes != _EMPTY)
        rows = more.rows[rejected]
        parts.append((rows if kept is None else kept[rows], label, more.codes[rejected]))
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
    statuses, per_column = _statuses(hashed, lists)
    extra = [more for _, _, more in hashed.extra]
    with_identifier = _rows_with_identifier([codes for _, _, codes in hashed.codes], extra)
    rejects = None
    if labels is not None:
        located = [(labels[name], codes) for _, name, codes in hashed.codes]
        rejects = _rejects(parse, located, kept, [(labels[n], m) for _, n, m in hashed.extra])
    return Processed(
        rows,
        _payloads(hashed, options.layout, list(lists)),
        statuses,
        hashed.phone_fallback,
        rejects,
        with_identifier,
        per_column if any(len(names) > 1 for names in lists.values()) else {},
        getattr(parse, "short_rows", 0),
        refused,
        hashed.repairs,
        hashed.phone_row_country,
        hashed.country_unknown,
    )


def _statuses(
    hashed: ColumnHashes, lists: Mapping[IdentifierType, list[str]]
) -> tuple[dict[IdentifierType, dict[str, int]], dict[str, dict[str, int]]]:
    """Status counts per type and per input column (a cell's other addresses included)."""
    more = {name: extra.codes for _, name, extra in hashed.extra}
    statuses: dict[IdentifierType, dict[str, int]] = {kind: {} for kind in lists}
    per_column: dict[str, dict[str, int]] = {}
    for kind, name, codes in hashed.codes:
        counted = count_statuses(codes, more.get(name))
        per_column[name] = counted
        for status, n in counted.items():
            statuses[kind][status] = statuses[kind].get(status, 0) + n
    return statuses, per_column


def _payloads(
    hashed: ColumnHashes, layout: Layout, kinds: list[IdentifierType]
) -> list[tuple[int, dict[int, Records]]]:
    """The batch's staged partitions: every accepted digest, by type (or wide row) group."""
    payloads = []
    if layout == "type-value":  # a type's group is its place in IdentifierType
        for group, kind in enumerate(IdentifierType):
            more = [extra.hashes for k, _, extra in hashed.extra if k is kind]
            for digests in [*hashed.hashes.get(kind, []), *more]:
                payload = partition_rows(digests.matrix, digests.accepted)
                if payload:
                    payloads.append((group, payload))
        return payloads
    blocks = [b for row in slots(hashed.hashes, kinds) for b in to_blocks(row, layout, kinds)]
    blocks += _extra_blocks(hashed, layout, kinds)
    for block in blocks:
        payloads.append((block.group, partition_payload(block.records, block.partitions)))
    return payloads


def _extra_blocks(hashed: ColumnHashes, layout: Layout, kinds: list[IdentifierType]) -> list[Block]:
    """Wide records of the extra identifiers: a cell's second address is a row of its own,
    other cells empty (repeating the row's other identifiers would count them twice)."""
    blocks: list[Block] = []
    for kind, _, more in hashed.extra:
        n = len(more.codes)
        nothing = Hashes(np.zeros((n, 64), np.uint8), np.zeros(n, np.bool_))
        alone = {other: more.hashes if other is kind else nothing for other in kinds}
        blocks += to_blocks(alone, layout, kinds)
    return blocks


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
            "country_column": options.normalize.country_column,
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
                repaired=dict.fromkeys(REPAIRS, 0) if kind is IdentifierType.EMAIL else None,
                **_country_counts(kind, options),
            )
            for kind, names in lists.items()
        },
        consent_column=(
            label(options.consent_column) if options.consent_column in source.columns else None
        ),
    )


def _country_counts(kind: IdentifierType, options: PrepareOptions) -> dict[str, int]:
    """The country column's counters, started on the phone entry when one is read."""
    if kind is IdentifierType.PHONE and options.normalize.country_column is not None:
        return {"row_country": 0, "country_unknown": 0}
    return {}


def merge_counts(
    done: Processed, columns: Mapping[IdentifierType, ColumnRequest], report: PrepareReport
) -> None:
    """Add one processed batch's counts to ``report`` (the stage write is the caller's)."""
    report.rows_read += done.rows
    report.rows_with_identifier += done.rows_with_identifier
    report.short_rows += done.short_rows
    report.no_consent += done.no_consent
    if done.repairs:
        email = report.identifiers[IdentifierType.EMAIL.key]
        before = email.repaired or {}
        email.repaired = {r: before.get(r, 0) + done.repairs.get(r, 0) for r in REPAIRS}
    if IdentifierType.PHONE in columns:
        phone = report.identifiers[IdentifierType.PHONE.key]
        phone.fallback = (phone.fallback or 0) + done.phone_fallback
        if phone.row_country is not None:  # a country column is read
            phone.row_country += done.phone_row_country
            phone.country_unknown = (phone.country_unknown or 0) + done.country_unknown
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
