"""One read, many segments: a source's rows grouped by an audience column, for several consumers.

A CDP keeps dozens of audiences in one table with a segment column. Reading it once per
audience costs a warehouse scan each; here every batch is read once and then, for each
*consumer* (a set of prepare options, optionally with an audience column), split by the
column's value and run through the same rules, hashing and staging as
:func:`~.pipeline.prepare_segment`. Each group stages into its own :class:`~.staging.Stage`, so
memory stays bounded by one batch plus one partition, whatever the number of groups; stages of
many groups open their partition files per write, so the descriptors in use do not grow with
the groups.

Refusals happen while reading, before anything is sent: rows with no value in the column, and
more distinct values than ``max_groups`` (a mistyped column would otherwise make thousands of
audiences).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.errors import ConfigError, InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.segment.columnsets import hash_columns
from spotify_audience_sync.segment.encode import Records, first_byte, record_width
from spotify_audience_sync.segment.limits import DEFAULT_MAX_GROUPS
from spotify_audience_sync.segment.pipeline import (
    PreparedSegment,
    PrepareOptions,
    ProgressCallback,
    _Processed,
    count_statuses,
    merge_counts,
    new_report,
    process_batch,
    resolve_column_lists,
)
from spotify_audience_sync.segment.quality import format_warnings
from spotify_audience_sync.segment.report import PrepareReport
from spotify_audience_sync.segment.sources import Source, ready
from spotify_audience_sync.segment.staging import Stage, partition_rows

__all__ = ["DEFAULT_MAX_GROUPS", "Split", "identifier_total", "prepare_split"]

#: Partition files per group and type. Fewer than one stage's 64: creating files dominated a
#: read with 20 groups (1 ms each here), and a group's sort stays small: Spotify takes at most
#: 1 GiB per audience (~13M rows), so a file holds at most ~1/8 of that, ~55 MB.
GROUP_FILES = 8


@dataclass(frozen=True)
class Split:
    """One consumer of a shared read: its prepare options and, optionally, its audience column.

    Without ``column`` the consumer gets one segment, under the key ``None``.
    """

    options: PrepareOptions
    column: str | None = None
    max_groups: int = DEFAULT_MAX_GROUPS


class _Consumer:
    """One consumer's columns and its groups' stages and reports, filled in input order."""

    def __init__(self, source: Source, split: Split) -> None:
        if split.options.rejects_path:
            raise ConfigError("--rejects is not available with an audience column or a plan")
        self.split = split
        self.source = source
        self.columns = resolve_column_lists(source.name, source.columns, split.options.columns)
        country = split.options.normalize.country_column
        if country is not None and country not in source.columns:
            raise InputError(f"{source.name}: no country column {country!r} (--country-column)")
        self.column = _find_column(source, split.column) if split.column else None
        if self.column is not None:
            _refuse_identifier_column(source.name, self.column, self.columns)
        self.kinds = list(self.columns)
        self.groups: dict[str | None, tuple[Stage, PrepareReport]] = {}
        # Partition files stay open between writes when the process may hold that many
        # descriptors (opening one per write cost 3 s per million rows with 20 groups).
        typed = split.options.layout == "type-value"  # a stage's files per type, or one set
        if self.column is None:
            self.descriptors = 64 * (len(self.kinds) if typed else 1)
        else:
            self.descriptors = split.max_groups * (GROUP_FILES * len(self.kinds) if typed else 64)
        self.keep_open = self.column is None or _allow_descriptors(self.descriptors)

    @property
    def wanted(self) -> list[str]:
        consent = self.split.options.consent_column
        country = self.split.options.normalize.country_column
        extra = [c for c in (self.column, consent, country) if c]
        return list(dict.fromkeys([*(c for cs in self.columns.values() for c in cs), *extra]))

    def work(self, batch: pl.DataFrame) -> list[tuple[str | None, _Processed]]:
        """One batch for this consumer, on a worker thread: split by value, then processed."""
        if self.column is None:
            return [(None, process_batch(ready(batch), self.columns, self.split.options))]
        if self.split.options.layout == "type-value" and not self.split.options.consent_column:
            return self._hashed_then_split(batch)
        parts = batch.partition_by(self.column, as_dict=True, maintain_order=True)
        return [
            (key[0], process_batch(ready(part), self.columns, self.split.options))
            for key, part in parts.items()
        ]

    def _hashed_then_split(self, batch: pl.DataFrame) -> list[tuple[str | None, _Processed]]:
        """Hash the whole batch once, then split its rows by value: the rules and hashing have
        a fixed cost per call that twenty small sub-batches would pay twenty times (measured:
        3x slower reads with 20 groups). Type-value records only: a row's types are apart."""
        assert self.column is not None
        hashed = hash_columns(batch, self.columns, self.split.options.normalize)
        rows = (
            batch.select(self.column)
            .with_row_index("row")
            .group_by(self.column, maintain_order=True)
            .agg(pl.col("row"))
        )
        results: list[tuple[str | None, _Processed]] = []
        for value, positions in rows.iter_rows():
            index = np.asarray(positions, dtype=np.int64)
            payloads = []
            # A cell's other addresses (hashed.extra) go with its row.
            more = {name: np.isin(extra.rows, index) for _, name, extra in hashed.extra}
            extras = [(kind, name, extra) for kind, name, extra in hashed.extra]
            for group, kind in enumerate(IdentifierType):  # as in process._payloads
                picked = [(d.matrix[index], d.accepted[index]) for d in hashed.hashes.get(kind, [])]
                picked += [
                    (e.hashes.matrix[more[n]], e.hashes.accepted[more[n]])
                    for k, n, e in extras
                    if k is kind
                ]
                for matrix, accepted in picked:
                    payload = partition_rows(matrix, accepted)
                    if payload:
                        payloads.append((group, payload))
            statuses: dict[IdentifierType, dict[str, int]] = {kind: {} for kind in self.columns}
            per_column: dict[str, dict[str, int]] = {}
            extra_codes = {name: extra.codes[more[name]] for _, name, extra in extras}
            for kind, name, codes in hashed.codes:
                per_column[name] = count_statuses(codes[index], extra_codes.get(name))
                for status, n in per_column[name].items():
                    statuses[kind][status] = statuses[kind].get(status, 0) + n
            several = any(len(names) > 1 for names in self.columns.values())
            # The exact-path phone count is kept per batch, not per row: not shown per group.
            results.append(
                (
                    value,
                    _Processed(
                        len(index),
                        payloads,
                        statuses,
                        0,
                        per_column=per_column if several else {},
                    ),
                )
            )
        return results

    def merge(self, results: list[tuple[str | None, _Processed]]) -> None:
        """Stage one batch's groups, in input order (main thread)."""
        for value, done in results:
            if self.column is not None and (value is None or not str(value).strip()):
                raise InputError(
                    f"{self.source.name}: {done.rows:,} rows have no value in the audience "
                    f"column {self.column!r}; filter them out (WHERE {self.column} IS NOT NULL) "
                    "or give them a value"
                )
            stage, report = self._group(value)
            for group, payload in done.payloads:
                stage.write(group, payload)
            merge_counts(done, self.columns, report)

    def _group(self, value: str | None) -> tuple[Stage, PrepareReport]:
        found = self.groups.get(value)
        if found is not None:
            return found
        if len(self.groups) >= self.split.max_groups:
            raise ConfigError(
                f"{self.source.name}: the audience column {self.column!r} has more than "
                f"{self.split.max_groups} distinct values; refusing to make that many audiences "
                "(raise --max-audiences if that is intended)"
            )
        if value is not None:
            _refuse_identifier_value(self.source.name, self.column, str(value))
        options = self.split.options
        stage = Stage(
            record_width(options.layout, self.kinds),
            options.temp_dir,
            keep_open=self.keep_open,
            **_coarse(options) if self.column is not None else {},
        )
        report = new_report(self.source, self.columns, options)
        if value is not None:
            report.input = f"{self.source.name} [{self.column} = {value}]"
        self.groups[value] = (stage, report)
        return stage, report

    def finish(self, seconds: float) -> dict[str | None, PreparedSegment]:
        """Each group as a prepared segment, in value order."""
        options = self.split.options
        prepared: dict[str | None, PreparedSegment] = {}
        for value in sorted(self.groups, key=lambda v: (v is not None, v or "")):
            stage, report = self.groups[value]
            report.seconds = seconds
            phone = report.identifiers.get(IdentifierType.PHONE.key)
            if phone is not None and self.column is not None:
                phone.fallback = None  # see _hashed_then_split
                phone.row_country = phone.country_unknown = None  # counted per batch too
            email = report.identifiers.get(IdentifierType.EMAIL.key)
            if email is not None and self.column is not None and options.layout == "type-value":
                email.repaired = None  # counted per batch, as the phone fallback is
            report.warnings = format_warnings(report, options.max_reject_rate)
            prepared[value] = PreparedSegment(
                stage, report, self.kinds, options.layout, options.workers, options.suppression
            )
        return prepared

    def close(self) -> None:
        for stage, _ in self.groups.values():
            stage.close()


def _partition(records: Records) -> npt.NDArray[np.uint8]:
    """A type-value record's partition: the top six bits of its digest's first byte."""
    result: npt.NDArray[np.uint8] = first_byte(records[:, :2]) >> np.uint8(2)
    return result


def _coarse(options: PrepareOptions) -> dict[str, Any]:
    """A group stage's few files (type-value; a wide record's partition is its lead digest's)."""
    if options.layout != "type-value":
        return {}
    return {"files": GROUP_FILES, "partition_of": _partition}


#: Descriptors left for everything else (sockets, the database driver, the other stages).
_SPARE_DESCRIPTORS = 512


def _allow_descriptors(needed: int) -> bool:
    """Whether ``needed`` more open files fit, raising the soft limit towards the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed + _SPARE_DESCRIPTORS
    if soft == resource.RLIM_INFINITY or wanted <= soft:
        return True
    if hard != resource.RLIM_INFINITY and wanted > hard:
        return False
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return False
    return True


#: What a value of an audience column must not look like: it becomes an audience name, a file
#: name and a log field, so a person's identifier there would leave the process unhashed.
_LOOKS_LIKE = (
    ("an email address", re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")),
    ("a phone number", re.compile(r"\+?(?:[\s().-]*\d){10,15}[\s()]*")),
    ("a device id", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")),
    ("a hashed identifier", re.compile(r"[0-9a-fA-F]{64}")),
)


def _refuse_identifier_column(name: str, column: str, columns: dict[Any, list[str]]) -> None:
    """An identifier column cannot name audiences: its values are people (exit 65)."""
    for kind, used in columns.items():
        if column in used:
            raise InputError(
                f"{name}: the audience column {column!r} is the {kind.key} identifier column: "
                "its values are personal data and would appear in audience names, file names "
                "and logs; group by a segment column"
            )


def _refuse_identifier_value(name: str, column: str | None, value: str) -> None:
    """A value that looks like a person's identifier is refused without being shown."""
    for what, pattern in _LOOKS_LIKE:
        if pattern.fullmatch(value.strip()):
            raise InputError(
                f"{name}: a value of the audience column {column!r} looks like {what}: "
                "refusing to put personal data in audience names, file names and logs; "
                "group by a segment column (the value is not shown)"
            )


def _find_column(source: Source, column: str) -> str:
    if column in source.columns:
        return column
    folded = [c for c in source.columns if c.casefold() == column.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"{source.name}: no audience column {column!r} (--audience-column); columns are "
        + ", ".join(repr(c) for c in source.columns[:20])
    )


def prepare_split(
    source: Source,
    splits: list[Split],
    *,
    workers: int = 2,
    on_progress: ProgressCallback | None = None,
) -> list[dict[str | None, PreparedSegment]]:
    """Read ``source`` once; for each split, its prepared segments by audience-column value.

    The caller owns the returned segments (close each). On an error, every stage is removed.
    """
    started = time.perf_counter()
    consumers = [_Consumer(source, split) for split in splits]
    # Files stay open between writes only if every consumer's fit at once (ten syncs of one
    # read held 64 per type each and ran out at `ulimit -n 1024`); else each write opens its
    # file, and the descriptors in use do not grow with the consumers.
    held = sum(consumer.descriptors for consumer in consumers if consumer.keep_open)
    if len(consumers) > 1 and not _allow_descriptors(held):
        for consumer in consumers:
            consumer.keep_open = False
    wanted = list(dict.fromkeys(c for consumer in consumers for c in consumer.wanted))
    rows = 0
    try:
        in_flight: deque[Future[list[list[tuple[str | None, _Processed]]]]] = deque()

        def work(parse: Callable[[], pl.DataFrame]) -> list[list[tuple[str | None, _Processed]]]:
            batch = parse()
            return [consumer.work(batch) for consumer in consumers]

        def merge_oldest() -> None:
            nonlocal rows
            done = in_flight.popleft().result()
            for consumer, results in zip(consumers, done, strict=True):
                consumer.merge(results)
            rows += sum(d.rows for _, d in done[0])
            if on_progress is not None:
                on_progress(rows)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            try:
                for parse in source.deferred_batches(wanted):
                    in_flight.append(pool.submit(work, parse))
                    if len(in_flight) > workers:
                        merge_oldest()
                while in_flight:
                    merge_oldest()
            finally:
                for future in in_flight:
                    future.cancel()
        if rows == 0:
            raise InputError(f"{source.name}: has a header but no data rows")
    except BaseException:
        for consumer in consumers:
            consumer.close()
        raise
    seconds = time.perf_counter() - started
    return [consumer.finish(seconds) for consumer in consumers]


def identifier_total(prepared: PreparedSegment) -> int:
    """Identifiers a group holds before deduplication (0: nothing valid to sync)."""
    return sum(e.hashed + e.prehashed for e in prepared.report.identifiers.values())
