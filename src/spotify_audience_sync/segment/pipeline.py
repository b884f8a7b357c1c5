"""The identifier pipeline: source batches → rules and hashing → staging → deduplicated CSV bytes.

Two phases. Reading runs batch by batch on a small thread pool (polars releases the GIL, so two
cores hash at once) and spills only hashes to the stage. Then :meth:`PreparedSegment.chunks`
deduplicates partition by partition and yields the file's bytes, so a writer or an uploader can
stream them without the whole file ever being in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from spotify_audience_sync.errors import ConfigError, InputError
from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.identifiers.phones import native as phones_native
from spotify_audience_sync.segment.columns import (
    COLUMN_ALIASES,
    ColumnRequest,
    column_label,
    resolve_column_lists,
    resolve_columns,
)
from spotify_audience_sync.segment.encode import (
    Layout,
    Records,
    encode_records,
    encoded_size,
    header,
    record_width,
    written_per_type,
)
from spotify_audience_sync.segment.outputs import AtomicFile, StreamTarget
from spotify_audience_sync.segment.process import (
    Processed,
    count_statuses,
    merge_counts,
    new_report,
    process_batch,
)
from spotify_audience_sync.segment.quality import DEFAULT_MAX_REJECT_RATE, format_warnings
from spotify_audience_sync.segment.rejects import RejectsFile
from spotify_audience_sync.segment.report import PrepareReport, plural
from spotify_audience_sync.segment.sources import Source
from spotify_audience_sync.segment.staging import PARTITIONS, Stage
from spotify_audience_sync.segment.suppression import Suppression
from spotify_audience_sync.settings import cache_dir_override, native_disabled

__all__ = [
    "COLUMN_ALIASES",
    "PrepareOptions",
    "PreparedSegment",
    "column_label",
    "count_statuses",
    "merge_counts",
    "new_report",
    "prepare_segment",
    "process_batch",
    "resolve_column_lists",
    "resolve_columns",
]

ProgressCallback = Callable[[int], None]

# The escape hatch, read where settings are (identifiers read no environment); every run
# reaches the rules through this module (split.py included). Only ever switches the C off.
if native_disabled():
    hashing.use_native(False)

_Processed = Processed  # the name split.py knows

#: Bytes of staged records deduplicated ahead of a streamed upload (see ``_ahead``).
STREAM_AHEAD = 32 * 1024 * 1024


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that shapes the upload file, apart from the input itself."""

    columns: Mapping[IdentifierType, ColumnRequest] = field(default_factory=dict)
    """Each type's column, or columns: every valid value of each is an identifier."""
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    layout: Layout = "type-value"
    temp_dir: str | None = None
    workers: int = 2
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    """Warn about (and let `sync` refuse) a column with this share of its values rejected."""
    rejects_path: str | None = None
    """Where to write the rejects report (see :mod:`.rejects`); None writes none."""
    country_column: str | None = None
    """The column holding each row's country, for phones in national format (None: none)."""
    consent_column: str | None = None
    """Keep only rows whose value here is affirmative (:mod:`.consent`); None keeps all."""
    suppression: Suppression | None = None
    """Identifiers removed before upload (:mod:`.suppression`); the caller closes it."""

    def __post_init__(self) -> None:
        # The rules read each row's region from the normalize options: one country column,
        # named here (by a flag, a setting or detection), reaches every pass that hashes.
        if self.country_column is not None and self.normalize.country_column is None:
            normalize = dataclasses.replace(self.normalize, country_column=self.country_column)
            object.__setattr__(self, "normalize", normalize)


class PreparedSegment:
    """A segment read, hashed and staged; :meth:`chunks` yields the deduplicated file."""

    def __init__(
        self,
        stage: Stage,
        report: PrepareReport,
        kinds: list[IdentifierType],
        layout: Layout,
        workers: int = 2,
        suppression: Suppression | None = None,
    ) -> None:
        self.report = report
        self._suppression = suppression
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
        suppressed: dict[IdentifierType, int] = dict.fromkeys(self.kinds, 0)
        rows = 0
        size = len(header(self.layout, self.kinds))
        for digest, count, counts, nbytes, gone in self._stage.deduplicated(
            self._measure, workers=self._workers, keep=True
        ):
            fingerprint.update(digest)
            rows += count
            size += nbytes
            for kind, n in counts.items():
                written[kind] += n
            for kind, n in gone.items():
                suppressed[kind] += n
        self._set_written(written, rows, size, suppressed)
        self.report.fingerprint = fingerprint.hexdigest()
        return self.report.fingerprint

    def _subtracted(
        self, parts: dict[int, Records]
    ) -> tuple[dict[int, Records], dict[IdentifierType, int]]:
        """One partition's distinct records without the suppressed ones (type-value groups)."""
        if self._suppression is None:
            return parts, {}
        gone: dict[IdentifierType, int] = {}
        kept = {}
        for group, records in parts.items():
            kept[group], removed = self._suppression.subtract(group, records)
            if removed:
                kind = list(IdentifierType)[group]
                gone[kind] = gone.get(kind, 0) + removed
        return kept, gone

    def _measure(
        self, parts: dict[int, Records]
    ) -> tuple[bytes, int, dict[IdentifierType, int], int, dict[IdentifierType, int]]:
        """One partition's digest, row count, per-type counts and encoded size (worker thread)."""
        parts, gone = self._subtracted(parts)
        size = sum(
            encoded_size(records, self.layout, self.kinds, group)
            for group, records in parts.items()
        )
        rows = sum(len(r) for r in parts.values())
        return _digest(parts), rows, self._written(parts), size, gone

    def _written(self, parts: dict[int, Records]) -> dict[IdentifierType, int]:
        """Identifiers per type in one partition's distinct records."""
        counts: dict[IdentifierType, int] = {}
        for group, records in parts.items():
            for kind, n in written_per_type(records, self.layout, self.kinds, group).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    @property
    def staged_digest(self) -> str:
        """What was staged, duplicates included, order aside (see ``Stage.multiset_digest``):
        known before deduplication, so a sync can guess "unchanged" before it uploads."""
        return self._stage.multiset_digest()

    def chunks(self, *, fingerprint: bool = False) -> Iterator[bytes]:
        """Yield the file: the header, then each partition's distinct rows as CSV bytes.

        Without :meth:`finalize` first, counts of written rows, duplicates and bytes are
        complete once this is exhausted (one pass, the cheapest way to write a file). With
        ``fingerprint``, that pass also computes the fingerprint :meth:`finalize` would, and
        keeps the deduplicated partitions, so the file can be produced again (an upload that
        has to start over): a sync streams its upload from this one pass.
        """
        final = self.report.fingerprint is not None
        keep = final or fingerprint
        digest = hashlib.sha256(header(self.layout, self.kinds)) if keep and not final else None
        yield header(self.layout, self.kinds)
        written: dict[IdentifierType, int] = dict.fromkeys(self.kinds, 0)
        suppressed: dict[IdentifierType, int] = dict.fromkeys(self.kinds, 0)
        rows, size = 0, len(header(self.layout, self.kinds))
        encode = self._encode_measured if digest is not None else self._encode
        for data, count, counts, gone, part in self._stage.deduplicated(
            encode, workers=self._workers, keep=keep, ahead=self._ahead(fingerprint)
        ):
            rows += count
            size += len(data)
            for kind, n in counts.items():
                written[kind] += n
            for kind, n in gone.items():
                suppressed[kind] += n
            if digest is not None:
                digest.update(part)
            if data:
                yield data
        if not final:
            self._set_written(written, rows, size, suppressed)
        if digest is not None:
            self.report.fingerprint = digest.hexdigest()
        self.report.seconds = time.perf_counter() - self._started

    def _ahead(self, streamed: bool) -> int:
        """Partitions deduplicated ahead of the consumer: one for a file, about STREAM_AHEAD
        bytes of them for an upload, whose chunk by chunk answers would otherwise leave the
        workers idle (a partition is about a 64th of what was staged)."""
        if not streamed:
            return 1
        partition = max(1, self._stage.bytes_staged // PARTITIONS)
        return max(1, min(16, STREAM_AHEAD // partition))

    def _set_written(
        self,
        written: dict[IdentifierType, int],
        rows: int,
        size: int,
        suppressed: dict[IdentifierType, int],
    ) -> None:
        for kind, n in written.items():
            entry = self.report.identifiers[kind.key]
            entry.written = n
            if self._suppression is not None:
                entry.suppressed = suppressed.get(kind, 0)
            entry.duplicates = entry.accepted - n - (entry.suppressed or 0)
        self.report.rows_written = rows
        self.report.bytes_written = size

    def _encode(
        self, parts: dict[int, Records], digest: bool = False
    ) -> tuple[bytes, int, dict[IdentifierType, int], dict[IdentifierType, int], bytes]:
        """One partition's distinct records → bytes, counts and (asked) the partition's digest
        as :meth:`_measure` computes it (runs on a worker thread)."""
        parts, gone = self._subtracted(parts)
        data = b"".join(
            encode_records(records, self.layout, self.kinds, group)
            for group, records in parts.items()
        )
        rows = sum(len(r) for r in parts.values())
        return data, rows, self._written(parts), gone, _digest(parts) if digest else b""

    def _encode_measured(
        self, parts: dict[int, Records]
    ) -> tuple[bytes, int, dict[IdentifierType, int], dict[IdentifierType, int], bytes]:
        return self._encode(parts, digest=True)

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


def _digest(parts: dict[int, Records]) -> bytes:
    """One partition's share of the fingerprint: its distinct records, group by group."""
    digest = hashlib.sha256()
    for group, records in parts.items():
        digest.update(bytes([group]) + len(records).to_bytes(8, "big"))
        digest.update(np.ascontiguousarray(records).data)
    return digest.digest()


def _country_column(source: Source, options: PrepareOptions) -> str | None:
    """The country column to read beside the identifiers; InputError if the source lacks it."""
    name = options.normalize.country_column
    if name is not None and name not in source.columns:
        raise InputError(f"{source.name}: no country column {name!r}")
    return name


def _country_warning(report: PrepareReport) -> list[str]:
    """Unrecognized country values, counted (a cell may hold anything: never shown)."""
    phone = report.identifiers.get(IdentifierType.PHONE.key)
    unknown = phone.country_unknown if phone is not None else None
    if not unknown:
        return []
    region = report.options["default_region"]
    return [
        f"{plural(unknown, 'country value')} named no country we know; "
        f"{'its' if unknown == 1 else 'their'} phones were read as {region} numbers"
    ]


def prepare_segment(
    source: Source,
    options: PrepareOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> PreparedSegment:
    """Read, normalize, hash and stage the whole source; return it ready to be encoded."""
    options = options or PrepareOptions()
    phones_native.use_cache_dir(cache_dir_override())
    started = time.perf_counter()
    columns = resolve_column_lists(source.name, source.columns, options.columns)
    _country_column(source, options)
    kinds = list(columns)
    _check_extra_columns(source, options)
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
    report.warnings = format_warnings(report, options.max_reject_rate) + _country_warning(report)
    prepared = PreparedSegment(
        stage, report, kinds, options.layout, options.workers, options.suppression
    )
    prepared.rejects = rejects
    return prepared


def _check_extra_columns(source: Source, options: PrepareOptions) -> None:
    """The consent column must exist; suppression needs the type-value layout."""
    consent = options.consent_column
    if consent is not None and consent not in source.columns:
        raise InputError(
            f"{source.name}: no column {column_label(consent, 0)!r} (--consent-column)"
        )
    if options.suppression is not None and options.layout != "type-value":
        raise ConfigError(
            "--exclude needs the type-value layout: in wide rows a suppressed identifier "
            "would take its row's other identifiers with it"
        )


def _run_batches(
    source: Source,
    columns: Mapping[IdentifierType, list[str]],
    options: PrepareOptions,
    stage: Stage,
    report: PrepareReport,
    on_progress: ProgressCallback | None,
    rejects: RejectsFile | None = None,
) -> None:
    """Keep ``workers`` batches in flight; merge results in input order (deterministic output)."""
    wanted = list(dict.fromkeys(c for names in columns.values() for c in names))
    country = options.normalize.country_column
    for extra in (options.consent_column, country):
        if extra is not None:
            wanted = list(dict.fromkeys([*wanted, extra]))
    renamed = {kind: columns[kind] for kind in columns}
    labels = (
        {name: column_label(name, source.columns.index(name) + 1) for name in wanted}
        if rejects
        else None
    )
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
