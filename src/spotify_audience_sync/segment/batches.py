"""Deferred batches: what a source yields, parsed on a worker thread when called.

Reading stays in file order on the reader's thread; parsing, most of the cost of reading, runs
later beside the rest of a batch's work. Each batch also says where its records are in the
input (:meth:`DeferredBatch.line_of`), for messages and a rejects report: text batches in
lines of the file, Parquet and query batches in rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.encoding import NOT_UTF8
from spotify_audience_sync.segment.locate import find_failure, ragged_rows, record_lines

if TYPE_CHECKING:
    from spotify_audience_sync.segment.sources import Source

__all__ = ["DeferredBatch", "TextBatch", "ready", "ready_batches"]


class DeferredBatch(Protocol):
    """One batch, read but not yet parsed: call it (once) for the frame.

    ``unit`` says what :meth:`line_of` counts: ``"line"`` for CSV, TSV and NDJSON (the
    1-based line of the file, the header line counted, on which a record starts, exact with
    quoted newlines and blank lines), ``"row"`` for Parquet and queries (the 1-based row).
    """

    unit: Literal["line", "row"]

    def __call__(self) -> pl.DataFrame: ...

    def line_of(self, rows: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Where the records at 0-based indices ``rows`` of this batch are, in ``unit``s.

        Text batches know it once parsed (RuntimeError before).
        """
        ...


class TextBatch:
    """One chunk of text, parsed when called, once: the raw bytes are let go as they parse.

    Implements :class:`DeferredBatch` with ``unit = "line"``. ``line`` is the file line the
    chunk starts on; ``newlines`` the chunk's newline count. When that equals the number of
    records parsed (no quoted newline, no blank NDJSON line), record ``i`` is on line
    ``line + i`` and nothing is stored; otherwise each record's line is worked out from the
    bytes before they are let go.
    """

    __slots__ = (
        "_chunk",
        "_columns",
        "_line",
        "_lines",
        "_newlines",
        "_rows",
        "_source",
        "short_rows",
    )
    unit: Literal["line", "row"] = "line"

    def __init__(
        self, source: Source, chunk: bytes, columns: list[str], line: int, newlines: int
    ) -> None:
        self._source, self._columns, self._line = source, columns, line
        self._chunk: bytes | None = chunk
        self._newlines = newlines
        self._rows: int | None = None
        self._lines: npt.NDArray[np.int64] | None = None  # per record, when not line + i
        #: CSV records with fewer fields than the header (read as blanks), once parsed.
        self.short_rows = 0

    def __call__(self) -> pl.DataFrame:
        chunk, self._chunk = self._chunk, None
        if chunk is None:
            raise RuntimeError("a deferred batch is parsed once")
        source = self._source
        try:
            frame = source.parse_chunk(chunk, self._columns)
        except pl.exceptions.PolarsError:
            raise self._located(chunk) from None
        if source.format != "ndjson":
            self.short_rows = self._ragged(chunk)
        self._rows = frame.height
        if frame.height != self._newlines:
            self._lines = record_lines(chunk, quoted=source.format != "ndjson") + self._line
        return frame

    def _ragged(self, chunk: bytes) -> int:
        """Records with fewer fields than the header; InputError at the first with more.

        A row with more fields (an unquoted delimiter inside a value) would shift its values
        into other columns, so it is refused wherever it is, even outside the columns read.
        """
        source = self._source
        width = len(source.columns)
        ragged = ragged_rows(chunk, source.delimiter, width)
        if ragged.long is not None:
            _, fields, start = ragged.long
            line = self._line + chunk.count(b"\n", 0, start)
            raise InputError(
                f"{source.name}: line {line} has {fields} fields where the "
                f"header has {width} (a delimiter inside an unquoted value?)"
            )
        return ragged.short

    def line_of(self, rows: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """The 1-based file line on which each record at index ``rows`` starts."""
        if self._rows is None:
            raise RuntimeError("lines are known once the batch is parsed")
        indices = np.asarray(rows, dtype=np.int64)
        if self._lines is not None:
            return self._lines[indices]
        return indices + self._line

    def _located(self, chunk: bytes) -> InputError:
        """The chunk's first failing record, by its exact line (the chunk alone is rescanned)."""
        source = self._source

        def parses(part: bytes) -> bool:
            try:
                source.parse_chunk(part, self._columns)
            except pl.exceptions.PolarsError:
                return False
            return True

        failure = find_failure(
            chunk,
            parses,
            quoted=source.format != "ndjson",
            width=len(source.columns),
            delimiter=source.delimiter,
        )
        why = NOT_UTF8 if failure.why == "is not valid UTF-8" else failure.why
        return InputError(f"{source.name}: line {self._line + failure.line} {why}")


class _Ready:
    """A batch that needs no parsing (Parquet, a query): :class:`DeferredBatch` in rows."""

    __slots__ = ("_batch", "_first")
    unit: Literal["line", "row"] = "row"

    def __init__(self, batch: pl.DataFrame, first: int) -> None:
        self._batch, self._first = batch, first

    def __call__(self) -> pl.DataFrame:
        return self._batch

    def line_of(self, rows: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """The 1-based row of the input (the query's result) for each index in ``rows``."""
        return np.asarray(rows, dtype=np.int64) + self._first


def ready(batch: pl.DataFrame, first_row: int = 1) -> DeferredBatch:
    """A batch that needs no parsing, whose first row is row ``first_row`` of the input."""
    return _Ready(batch, first_row)


def ready_batches(frames: Iterator[pl.DataFrame]) -> Iterator[DeferredBatch]:
    """Parsed frames as deferred batches, numbering their rows from 1 across the input."""
    first = 1
    for frame in frames:
        yield _Ready(frame, first)
        first += frame.height
