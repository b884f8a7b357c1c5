"""The identifier pipeline: source batches → rules and hashing → staging → deduplicated CSV bytes.

Two phases. Reading runs batch by batch on a small thread pool (polars releases the GIL, so two
cores hash at once) and spills only hashes to the stage. Then :meth:`PreparedSegment.chunks`
deduplicates partition by partition and yields the file's bytes, so a writer or an uploader can
stream them without the whole file ever being in memory.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import (
    HASHED,
    PREHASHED,
    REJECT_REASONS,
    STATUS,
    IdentifierType,
    NormalizeOptions,
    hash_batch,
)
from spotify_audience_sync.segment.columns import COLUMN_ALIASES, column_label, resolve_columns
from spotify_audience_sync.segment.encode import (
    Layout,
    Records,
    encode_records,
    encoded_size,
    header,
    record_width,
    to_blocks,
    written_per_type,
)
from spotify_audience_sync.segment.outputs import AtomicFile, StreamTarget
from spotify_audience_sync.segment.quality import DEFAULT_MAX_REJECT_RATE, format_warnings
from spotify_audience_sync.segment.rejects import BatchRejects, RejectsFile
from spotify_audience_sync.segment.report import PrepareReport, TypeCounts
from spotify_audience_sync.segment.sources import Source
from spotify_audience_sync.segment.staging import Stage, partition_payload, partition_rows

__all__ = [
    "COLUMN_ALIASES",
    "PrepareOptions",
    "PreparedSegment",
    "column_label",
    "prepare_segment",
    "resolve_columns",
]

ProgressCallback = Callable[[int], None]

_REASONS: list[str] = STATUS.categories.to_list()
_FIRST_REASON = _REASONS.index(PREHASHED) + 1  # statuses after hashed and prehashed: rejections
_EMPTY = _REASONS.index("empty")


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that shapes the upload file, apart from the input itself."""

    columns: Mapping[IdentifierType, str] = field(default_factory=dict)
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    layout: Layout = "type-value"
    temp_dir: str | None = None
    workers: int = 2
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    """Warn about (and let `sync` refuse) a column with this share of its values rejected."""
    rejects_path: str | None = None
    """Where to write the rejects report (see :mod:`.rejects`); None writes none."""


class PreparedSegment:
    """A segment read, hashed and staged; :meth:`chunks` yields the deduplicated file."""

    def __init__(
        self,
        stage: Stage,
        report: PrepareReport,
        kinds: list[IdentifierType],
        layout: Layout,
        workers: int = 2,
    ) -> None:
        self.report = report
        self._workers = workers
        self.layout: Layout = layout
        self.kinds = kinds
        self._stage = stage
        self._started = time.perf_counter() - report.seconds
        #: The rejects report, written but not yet in place: the caller commits it on success.
        self.rejects: RejectsFile | None = None

    def finalize(self) -> str:
        """Deduplicate everything now; fill in exact counts and size; return the fingerprint.

        After this, the report knows what the file holds before a byte of it is produced, so
        a caller can check limits and compare with the last sync before anything is sent.
        The fingerprint is a SHA-256 over the distinct rows in canonical order: equal sets
        give equal fingerprints, whatever the input order.
        """
        if self.report.fingerprint is not None:
            return self.report.fingerprint
        fingerprint = hashlib.sha256(header(self.layout, self.kinds))
        written: dict[IdentifierType, int] = dict.fromkeys(self.kinds, 0)
        rows = 0
        size = len(header(self.layout, self.kinds))
        for digest, count, counts, nbytes in self._stage.deduplicated(
            self._measure, workers=self._workers, keep=True
        ):
            fingerprint.update(digest)
            rows += count
            size += nbytes
            for kind, n in counts.items():
                written[kind] += n
        self._set_written(written, rows, size)
        self.report.fingerprint = fingerprint.hexdigest()
        return self.report.fingerprint

    def _measure(
        self, parts: dict[int, Records]
    ) -> tuple[bytes, int, dict[IdentifierType, int], int]:
        """One partition's digest, row count, per-type counts and encoded size (worker thread)."""
        digest = hashlib.sha256()
        size = 0
        for group, records in parts.items():
            digest.update(bytes([group]) + len(records).to_bytes(8, "big"))
            digest.update(np.ascontiguousarray(records).data)
            size += encoded_size(records, self.layout, self.kinds, group)
        return digest.digest(), sum(len(r) for r in parts.values()), self._written(parts), size

    def _written(self, parts: dict[int, Records]) -> dict[IdentifierType, int]:
        """Identifiers per type in one partition's distinct records."""
        counts: dict[IdentifierType, int] = {}
        for group, records in parts.items():
            for kind, n in written_per_type(records, self.layout, self.kinds, group).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    def chunks(self) -> Iterator[bytes]:
        """Yield the file: the header, then each partition's distinct rows as CSV bytes.

        Without :meth:`finalize` first, counts of written rows, duplicates and bytes are
        complete once this is exhausted (one pass, the cheapest way to write a file).
        """
        final = self.report.fingerprint is not None
        yield header(self.layout, self.kinds)
        written: dict[IdentifierType, int] = dict.fromkeys(self.kinds, 0)
        rows, size = 0, len(header(self.layout, self.kinds))
        for data, count, counts in self._stage.deduplicated(
            self._encode, workers=self._workers, keep=final
        ):
            rows += count
            size += len(data)
            for kind, n in counts.items():
                written[kind] += n
            if data:
                yield data
        if not final:
            self._set_written(written, rows, size)
        self.report.seconds = time.perf_counter() - self._started

    def _set_written(self, written: dict[IdentifierType, int], rows: int, size: int) -> None:
        for kind, n in written.items():
            entry = self.report.identifiers[kind.key]
            entry.written = n
            entry.duplicates = entry.accepted - n
        self.report.rows_written = rows
        self.report.bytes_written = size

    def _encode(self, parts: dict[int, Records]) -> tuple[bytes, int, dict[IdentifierType, int]]:
        """One partition's distinct records → bytes and counts (runs on a worker thread)."""
        data = b"".join(
            encode_records(records, self.layout, self.kinds, group)
            for group, records in parts.items()
        )
        return data, sum(len(r) for r in parts.values()), self._written(parts)

    def write_to(self, stream: BinaryIO | AtomicFile | StreamTarget) -> None:
        """Write the whole file to a binary stream."""
        for chunk in self.chunks():
            stream.write(chunk)

    def write_file(self, path: str | Path) -> None:
        """Write the file atomically: a half-written output never replaces a good one."""
        with AtomicFile(path, "--output", mode=0o644) as out:
            self.write_to(out)
            out.commit()

    def close(self) -> None:
        """Remove the staged hashes, and a rejects report nobody committed."""
        self._stage.close()
        if self.rejects is not None:
            self.rejects.discard()

    def __enter__(self) -> PreparedSegment:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Processed:
    """What a worker hands back for one batch: rows, staged partitions by group, counts."""

    rows: int
    payloads: list[tuple[int, dict[int, Records]]]
    statuses: dict[IdentifierType, dict[str, int]]
    phone_fallback: int
    rejects: BatchRejects | None = None
    rows_with_identifier: int = 0


def count_statuses(codes: npt.NDArray[np.uint8]) -> dict[str, int]:
    """How many values ended in each status: a bincount of the status codes."""
    counts = np.bincount(codes, minlength=len(STATUS.categories))
    return {STATUS.categories[i]: int(n) for i, n in enumerate(counts) if n}


def _rows_with_identifier(codes: Mapping[IdentifierType, npt.NDArray[np.uint8]]) -> int:
    """Rows where at least one type's value was accepted (hashed or pre-hashed): one vector
    compare and OR per type over the status codes the rules already produced."""
    accepted: npt.NDArray[np.bool_] | None = None
    for kind_codes in codes.values():
        ok = kind_codes < _FIRST_REASON
        accepted = ok if accepted is None else np.logical_or(accepted, ok, out=accepted)
    return 0 if accepted is None else int(np.count_nonzero(accepted))


def _rejects(
    parse: Callable[[], pl.DataFrame],
    codes: Mapping[IdentifierType, npt.NDArray[np.uint8]],
    labels: Mapping[IdentifierType, str],
) -> BatchRejects:
    """Where this batch's rejected values are (blank cells are counted, not listed)."""
    parts = []
    for kind, kind_codes in codes.items():
        rows = np.flatnonzero((kind_codes >= _FIRST_REASON) & (kind_codes != _EMPTY))
        parts.append((rows, labels[kind], kind_codes[rows]))
    rows = np.concatenate([r for r, _, _ in parts]) if parts else np.zeros(0, np.int64)
    columns = [label for r, label, _ in parts for _ in range(len(r))]
    reasons = [_REASONS[code] for _, _, c in parts for code in c.tolist()]
    line_of = getattr(parse, "line_of", None)
    if line_of is not None:  # the source knows each record's exact line
        return BatchRejects(np.asarray(line_of(rows), np.int64), columns, reasons, False)
    return BatchRejects(rows.astype(np.int64), columns, reasons, True)


def process_batch(
    parse: Callable[[], pl.DataFrame],
    columns: Mapping[IdentifierType, str],
    options: PrepareOptions,
    labels: Mapping[IdentifierType, str] | None = None,
) -> _Processed:
    """One batch, on a worker thread: parsing, rules and hashes, status counts, partitions.

    With ``labels`` (each type's column as shown), the rejected values' locations too.
    """
    # Each stage's input is let go as soon as the next stage has what it needs: a batch's
    # peak working set, times the batches in flight, is most of the process's peak memory.
    batch = parse()
    hashed = hash_batch(batch, columns, options.normalize)
    del batch
    statuses = {kind: count_statuses(codes) for kind, codes in hashed.codes.items()}
    rows, fallback = hashed.rows, hashed.phone_fallback
    with_identifier = _rows_with_identifier(hashed.codes)
    rejects = _rejects(parse, hashed.codes, labels) if labels is not None else None
    payloads = []
    if options.layout == "type-value":  # a type's group is its place in IdentifierType
        for group, kind in enumerate(IdentifierType):
            if kind in hashed.hashes:
                payload = partition_rows(hashed.hashes[kind].matrix, hashed.hashes[kind].accepted)
                if payload:
                    payloads.append((group, payload))
        return _Processed(rows, payloads, statuses, fallback, rejects, with_identifier)
    blocks = to_blocks(hashed.hashes, options.layout, list(columns))
    del hashed
    while blocks:
        block = blocks.pop(0)
        payloads.append((block.group, partition_payload(block.records, block.partitions)))
        del block
    return _Processed(rows, payloads, statuses, fallback, rejects, with_identifier)


def new_report(
    source: Source, columns: Mapping[IdentifierType, str], options: PrepareOptions
) -> PrepareReport:
    """An empty report for ``source`` read through ``columns``: counts are merged into it."""
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
                column=column_label(columns[kind], source.columns.index(columns[kind]) + 1),
                rejected=dict.fromkeys(REJECT_REASONS[kind], 0),
            )
            for kind in columns
        },
    )


def merge_counts(
    done: _Processed, columns: Mapping[IdentifierType, str], report: PrepareReport
) -> None:
    """Add one processed batch's counts to ``report`` (the stage write is the caller's)."""
    report.rows_read += done.rows
    report.rows_with_identifier += done.rows_with_identifier
    if IdentifierType.PHONE in columns:
        phone = report.identifiers[IdentifierType.PHONE.key]
        phone.fallback = (phone.fallback or 0) + done.phone_fallback
    for kind, counts in done.statuses.items():
        entry = report.identifiers[kind.key]
        for status, n in counts.items():
            if status == HASHED:
                entry.hashed += n
            elif status == PREHASHED:
                entry.prehashed += n
            else:
                entry.rejected[status] = entry.rejected.get(status, 0) + n


def prepare_segment(
    source: Source,
    options: PrepareOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> PreparedSegment:
    """Read, normalize, hash and stage the whole source; return it ready to be encoded."""
    options = options or PrepareOptions()
    started = time.perf_counter()
    columns = resolve_columns(source.name, source.columns, options.columns)
    kinds = list(columns)
    report = new_report(source, columns, options)
    rejects = None
    if options.rejects_path:
        unit = "row" if source.format not in ("csv", "tsv", "ndjson") else "line"
        rejects = RejectsFile(options.rejects_path, unit)
    stage = Stage(record_width(options.layout, kinds), options.temp_dir)
    try:
        _run_batches(source, columns, options, stage, report, on_progress, rejects)
        if report.rows_read == 0:
            raise InputError(f"{source.name}: has a header but no data rows")
    except BaseException:
        stage.close()
        if rejects is not None:
            rejects.discard()
        raise
    report.seconds = time.perf_counter() - started
    report.warnings = format_warnings(report, options.max_reject_rate)
    prepared = PreparedSegment(stage, report, kinds, options.layout, options.workers)
    prepared.rejects = rejects
    return prepared


def _run_batches(
    source: Source,
    columns: Mapping[IdentifierType, str],
    options: PrepareOptions,
    stage: Stage,
    report: PrepareReport,
    on_progress: ProgressCallback | None,
    rejects: RejectsFile | None = None,
) -> None:
    """Keep ``workers`` batches in flight; merge results in input order (deterministic output)."""
    wanted = list(dict.fromkeys(columns.values()))
    renamed = {kind: columns[kind] for kind in columns}
    labels = {kind: report.identifiers[kind.key].column for kind in columns} if rejects else None
    # A record's 1-based row (Parquet, queries) or, without a line map, line (the header is 1).
    first = 2 if source.format in ("csv", "tsv") else 1
    in_flight: deque[Future[_Processed]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:

        def merge_oldest() -> None:
            done = in_flight.popleft().result()
            for group, payload in done.payloads:
                stage.write(group, payload)
            if rejects is not None and done.rejects is not None:
                rejects.add(done.rejects, first + report.rows_read)
            merge_counts(done, columns, report)
            if on_progress is not None:
                on_progress(report.rows_read)

        try:
            try:
                for parse in source.deferred_batches(wanted):
                    in_flight.append(pool.submit(process_batch, parse, renamed, options, labels))
                    if len(in_flight) > options.workers:
                        merge_oldest()
            except InputError:
                # Reading runs ahead of parsing: an error reading a later chunk must not hide
                # one in an earlier chunk, so the earlier ones are finished (or fail) first.
                while in_flight:
                    merge_oldest()
                raise
            while in_flight:
                merge_oldest()
        finally:
            for future in in_flight:
                future.cancel()
