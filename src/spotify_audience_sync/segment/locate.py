"""Exact locations in a text chunk: the line each record starts on, and the record that failed.

A chunk is a run of whole records (see :func:`.chunks.record_chunks`) whose first line's
number is known. On the happy path nothing here runs beyond one comparison: when a chunk has as
many newlines as polars found records, record ``i`` is on line ``first + i``. Only a chunk with
quoted newlines (CSV) or blank lines (NDJSON, where polars skips them) has its record starts
worked out, with numpy, while its bytes are still at hand.

Every CSV chunk is also checked for records with more or fewer fields than the header
(:func:`ragged_rows`): one pass in C where the extension is built, :func:`field_counts`'s
numpy scans otherwise, with the same answer.

When polars rejects a chunk, the chunk alone is scanned again to name the exact line: a UTF-8
decode finds a bad byte; otherwise polars itself is asked, by bisection over record ends,
which is the first record it cannot parse, so the line is the one polars objects to, not a
guess by another parser. That costs about twenty parses of a part of one chunk, on failure only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from spotify_audience_sync.identifiers.hashing import native_module

__all__ = [
    "Failure",
    "Fields",
    "Ragged",
    "field_counts",
    "find_failure",
    "ragged_rows",
    "record_lines",
]

Lines = npt.NDArray[np.int64]


def record_lines(chunk: bytes, *, quoted: bool) -> Lines:
    """The 0-based line, within ``chunk``, on which each record polars reads from it starts.

    CSV (``quoted``): a record ends at a newline outside double quotes; a blank line is a
    record (polars reads it as nulls). NDJSON: every line is a record except blank ones, which
    polars skips.
    """
    data = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    if quoted:
        quotes = np.flatnonzero(data == ord('"'))
        even = (np.searchsorted(quotes, newlines) & 1) == 0  # quotes before each newline
        ends = newlines[even]
        starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
        return np.searchsorted(newlines, starts).astype(np.int64)
    lines = chunk.split(b"\n")[: len(newlines)]
    return np.array([i for i, line in enumerate(lines) if line.strip()], dtype=np.int64)


class Failure:
    """Where a chunk fails and why: ``line`` is 0-based within the chunk; ``why`` quotes no data."""

    __slots__ = ("line", "why")

    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


class Fields:
    """How many fields each CSV record of a chunk has, and where each record starts (bytes)."""

    __slots__ = ("counts", "starts")

    def __init__(self, counts: Lines, starts: Lines) -> None:
        self.counts, self.starts = counts, starts


def field_counts(chunk: bytes, delimiter: str) -> Fields:
    """Fields per record of a CSV chunk: delimiters outside double quotes, plus one.

    polars, reading some columns only, neither fails on a row with more fields than the header
    nor says which rows had fewer; this pass (a few vector scans of the chunk) tells both.
    """
    data = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    delimiters = np.flatnonzero(data == ord(delimiter))
    if b'"' in chunk:
        quotes = np.flatnonzero(data == ord('"'))
        newlines = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
        delimiters = delimiters[(np.searchsorted(quotes, delimiters) & 1) == 0]
    ends = newlines
    if len(chunk) and chunk[-1:] != b"\n":
        ends = np.append(ends, len(chunk))
    before = np.searchsorted(delimiters, ends)
    counts = np.diff(before, prepend=0).astype(np.int64) + 1
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64) if len(ends) else ends
    return Fields(counts, starts)


class Ragged:
    """A CSV chunk's records with fewer fields than the header (``short``), and the first with
    more: ``long`` is its index, field count and byte start, or None when there is none."""

    __slots__ = ("long", "short")

    def __init__(self, short: int, long: tuple[int, int, int] | None) -> None:
        self.short, self.long = short, long


def ragged_rows(chunk: bytes, delimiter: str, width: int) -> Ragged:
    """:func:`field_counts` held against the header's ``width``, without the per-record arrays.

    In C (``ragged_scan``, one pass) where the extension is built: numpy's scans cost ~0.2 s
    per 2M rows (92 MB) on one thread, more than polars' parse of the same bytes; the C scan
    ~0.02 s. It takes an ASCII delimiter (every one sniffed; a quote or newline is never
    one); any other goes to numpy, which defines the answer either way.
    """
    native = native_module()
    code = ord(delimiter) if len(delimiter) == 1 else -1
    if native is not None and 0 <= code < 128 and delimiter not in '"\n':
        _, short, index, fields, start = native.ragged_scan(chunk, code, width)
        return Ragged(short, None if index < 0 else (index, fields, start))
    counts = field_counts(chunk, delimiter)
    long = np.flatnonzero(counts.counts > width)
    first = (
        (int(long[0]), int(counts.counts[long[0]]), int(counts.starts[long[0]]))
        if len(long)
        else None
    )
    return Ragged(int(np.count_nonzero(counts.counts < width)), first)


def find_failure(
    chunk: bytes,
    parses: Callable[[bytes], bool],
    *,
    quoted: bool,
    width: int,
    delimiter: str = ",",
) -> Failure:
    """The first record of ``chunk`` that fails: a bad UTF-8 byte, else the first record end
    at which ``parses(chunk[:end])`` turns false (polars's own verdict, found by bisection).

    ``width`` is the number of columns in the header (CSV), for the message.
    """
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(chunk.count(b"\n", 0, exc.start), "is not valid UTF-8")
    data = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    if quoted:
        quotes = np.flatnonzero(data == ord('"'))
        newlines = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
    ends = [int(n) + 1 for n in newlines]
    if not ends or ends[-1] != len(chunk):
        ends.append(len(chunk))
    low, high = 0, len(ends) - 1  # the first failing end is in ends[low:high + 1]
    while low < high:
        middle = (low + high) // 2
        if parses(chunk[: ends[middle]]):
            low = middle + 1
        else:
            high = middle
    start = ends[low - 1] if low else 0
    record = chunk[start : ends[low]]
    line = chunk.count(b"\n", 0, start)
    return Failure(line, _why_csv(record, width, delimiter) if quoted else _why_json(record))


def _why_csv(record: bytes, width: int, delimiter: str = ",") -> str:
    if record.count(b'"') % 2:
        return "has a stray or unclosed double quote"
    text = record.decode("utf-8")
    try:
        lines = text.splitlines(keepends=True) or [""]
        rows = list(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error:
        return "has a stray or unclosed double quote"
    if len(rows) == 1 and len(rows[0]) > width:
        return f"has {len(rows[0])} fields where the header has {width}"
    return "is a malformed row (wrong number of fields, or a stray or unclosed double quote)"


def _why_json(record: bytes) -> str:
    try:
        value = json.loads(record)
    except ValueError:
        return "is not valid JSON"
    if not isinstance(value, dict):
        return "is not a JSON object"
    return "has a value whose type differs from the same key's on earlier lines"
