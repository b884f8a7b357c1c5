"""Segment inputs: CSV (plain, gzip, stdin, a URL), NDJSON and Parquet, read in bounded batches.

The only module that opens input. Text formats are read through our own chunker
(:mod:`.chunks`) instead of a memory map, so peak memory is set by the chunk size, not the file
size, and the same code serves files, gzip streams and stdin. Every column is read as text:
a phone's leading zero or ``+`` must survive until the identifier rules see it. Errors name
the file and never quote a value, and name a column only when its name does not look like a
value (:func:`looks_like_data`).

Errors name the exact line (1-based, the header line counted), found by scanning again only
the chunk that failed (:mod:`.locate`); each deferred batch maps its records to their lines
(:class:`~.batches.DeferredBatch`). Other encodings than UTF-8 are transcoded as they stream
(:mod:`.encoding`).

CSV and TSV columns are selected by position: polars sees a header we write (``c0,c1,...``),
never the file's own, so spaces after commas, quoting or odd names cannot confuse it. NDJSON
columns are the keys found in the first chunk (``chunk_bytes``, completed to a line end), in
first-seen order; a key that first appears later is not offered, and asking for it is an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl

from spotify_audience_sync.errors import InputError, InputNotFoundError
from spotify_audience_sync.redact import mask_url
from spotify_audience_sync.segment.batches import DeferredBatch, TextBatch, ready, ready_batches
from spotify_audience_sync.segment.chunks import MAX_RECORD_BYTES, count, record_chunks
from spotify_audience_sync.segment.delimiters import delimiter_named, sniff_delimiter
from spotify_audience_sync.segment.encoding import (
    NOT_UTF8,
    read_failure,
    sniff_wide_encoding,
    transcoded,
)
from spotify_audience_sync.segment.remote import is_url, open_url

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DeferredBatch",
    "Format",
    "Source",
    "delimiter_named",
    "detect_format",
    "looks_like_data",
    "open_source",
    "ready",
    "ready_batches",
    "sniff_delimiter",
]

Format = Literal["auto", "csv", "tsv", "ndjson", "parquet"]

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
_MAX_HEADER_BYTES = 1024 * 1024  # a header row longer than this is not a header row
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: str, fmt: Format = "auto") -> Format:
    """The input format: as given, else from the file name (``.gz`` looked through), else CSV."""
    if fmt != "auto":
        return fmt
    if "://" in path:  # a URL: its path's suffixes, not its query's
        path = path.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return _SUFFIXES.get(suffixes[-1], "csv") if suffixes else "csv"


# Seven digits with separators (space . - ( ) /) between them: a phone number, anywhere.
_DIGIT_RUN = re.compile(r"\d(?:[\s.\-()/]*\d){6}")
# 32 hex digits, dashes allowed between: a device ID with or without dashes, a UUID, an MD5;
# a SHA-256 digest (64) contains such a run.
_HEX_RUN = re.compile(r"[0-9a-fA-F](?:-?[0-9a-fA-F]){31}")


def looks_like_data(name: str) -> bool:
    """Whether text from the input (a column name, a key) looks like an identifier value.

    A file without a header row has its first record read as the column names, so a message
    listing them would leak an email or phone number. True for text containing ``@``, a run of
    seven or more digits with separators (space ``.`` ``-`` ``(`` ``)`` ``/``) between them
    (``mobile 4155550123``, ``Phone: 415 555 0123``, ``415.555.0123 home``), a run of 32 hex
    digits with or without dashes (device IDs, UUIDs, SHA-256 digests), and text of at least
    five digits that is mostly digits and punctuation. It leans to True: a false positive
    (``signup_20240101``) only makes a message name the column by its position instead.
    """
    text = name.strip()
    if "@" in text or _DIGIT_RUN.search(text) or _HEX_RUN.search(text):
        return True
    digits = sum(c.isdigit() for c in text)
    filler = sum(not c.isalnum() for c in text)  # spaces, "+" and punctuation
    return digits >= 5 and digits + filler >= 0.8 * len(text)


def _shown(column: str) -> str:
    """``column`` quoted for a message, or a stand-in when it looks like data."""
    return "named like data (name not shown)" if looks_like_data(column) else repr(column)


@dataclass
class Source:
    """An opened input: its display name, its columns, and a way to read them in batches."""

    name: str
    format: Format
    columns: list[str] = field(repr=False)  # may be a headerless file's first row: not logged
    _stream: BinaryIO | None = field(default=None, repr=False)
    _prefix: bytes = field(default=b"", repr=False)
    _raw: BinaryIO | None = field(default=None, repr=False)
    _owned: bool = field(default=True, repr=False)
    _path: Path | None = field(default=None, repr=False)
    _header: bytes = field(default=b"", repr=False)
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    _first_line: int = field(default=2, repr=False)  # of the first record after the header
    #: CSV and TSV: the field delimiter, as given or sniffed from the header line.
    delimiter: str = ","

    def batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        """Yield the named columns as text, a bounded batch at a time, in file order.

        Raises InputError at once, before reading, when a name is not one of :attr:`columns`.
        """
        return (parse() for parse in self.deferred_batches(columns))

    def deferred_batches(self, columns: list[str]) -> Iterator[DeferredBatch]:
        """Like :meth:`batches`, but yield each batch unparsed, as a function that parses it.

        Reading stays in file order on the caller's thread; the parsing, most of the cost of
        reading, can then run on worker threads beside the rest of a batch's work. Each batch
        also maps its records to their lines (or rows): :class:`DeferredBatch`.
        """
        columns = list(dict.fromkeys(columns))
        for column in columns:
            if column not in self.columns:
                where = " among the keys of the first chunk" if self.format == "ndjson" else ""
                raise InputError(f"{self.name}: no column {_shown(column)}{where}")
        if self.format == "parquet":
            return ready_batches(self._parquet_batches(columns))
        return self._text_batches(columns)

    def close(self) -> None:
        """Release the underlying streams (stdin is left open)."""
        if not self._owned:
            return
        for stream in (self._stream, self._raw):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _parquet_batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        assert self._path is not None
        frame = pl.scan_parquet(self._path).select(pl.col(columns).cast(pl.String))
        try:
            yield from frame.collect_batches(chunk_size=250_000, engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise self._parquet_error(columns, exc) from None

    def _parquet_error(self, columns: list[str], exc: Exception) -> InputError:
        """Name the column that cannot be read as text: each is tried alone (failure path only)."""
        assert self._path is not None
        schema = pl.scan_parquet(self._path).collect_schema()
        for number, column in enumerate(columns, 1):
            label = f"column {number}" if looks_like_data(column) else repr(column)
            try:
                alone = pl.scan_parquet(self._path).select(pl.col(column).cast(pl.String))
                for _ in alone.collect_batches(chunk_size=250_000, engine="streaming"):
                    pass
            except pl.exceptions.PolarsError:
                return InputError(
                    f"{self.name}: column {label} (Parquet type {schema[column]}) cannot be "
                    "read as text"
                )
        return InputError(f"{self.name}: cannot read Parquet data ({type(exc).__name__})")

    def _text_batches(self, columns: list[str]) -> Iterator[DeferredBatch]:
        assert self._stream is not None
        line = self._first_line
        chunks = record_chunks(
            self._stream, self.name, self.chunk_bytes, self._prefix, quoted=self.format != "ndjson"
        )
        for chunk in chunks:
            newlines = count(chunk, b"\n")
            yield TextBatch(self, chunk, columns, line, newlines)
            line += newlines

    def parse_chunk(self, chunk: bytes, columns: list[str]) -> pl.DataFrame:
        """Parse one chunk of whole records (see :mod:`.chunks`) into the named columns."""
        if self.format == "ndjson":
            frame = pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None)
            missing = [c for c in columns if c not in frame.columns]
            frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
            return frame.select(pl.col(columns).cast(pl.String))
        # By position, under the header we wrote: the first column of a repeated name wins.
        # The header goes in front of every chunk, so each chunk parses like the file's start
        # (a ragged or blank first line, a BOM-like first character) wherever the cut falls.
        fields = [f"c{self.columns.index(c)}" for c in columns]
        frame = pl.read_csv(
            self._header + chunk,
            columns=fields,
            separator=self.delimiter,
            infer_schema=False,
            encoding="utf8",
            raise_if_empty=False,
        )
        return frame.select(pl.col(f).alias(c) for f, c in zip(fields, columns, strict=True))


def _open_stream(path: str) -> tuple[BinaryIO, io.BufferedReader, str]:
    """Open a path, ``-`` or a URL (:mod:`.remote`) for binary reading, looking through gzip by
    its magic bytes."""
    if path == "-":
        stdin = sys.stdin.buffer
        # peek() is needed to sniff gzip; a test runner's stdin may lack it.
        raw: io.BufferedReader = (
            stdin if hasattr(stdin, "peek") else io.BufferedReader(stdin)  # type: ignore[assignment,arg-type]
        )
        name = "<stdin>"
    elif is_url(path):
        raw, name = open_url(path)
    else:
        file = Path(path)
        if not file.exists():
            raise InputNotFoundError(f"{path}: no such file")
        if file.is_dir():
            raise InputError(f"{path}: is a directory, not a file")
        try:
            raw = file.open("rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot be opened ({exc.strerror})") from exc
        name = path
    try:
        magic = raw.peek(2)[:2]
    except OSError as exc:  # a URL's first bytes failed to arrive
        raw.close()
        raise InputError(f"{name}: cannot be read ({type(exc).__name__})") from None
    by_suffix = is_url(path) and path.split("?", 1)[0].lower().endswith(".gz")
    if magic == _GZIP_MAGIC or (magic and by_suffix):
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, name  # type: ignore[return-value]
    return raw, raw, name


def _decoded(stream: BinaryIO, name: str, encoding: str | None) -> BinaryIO:
    """The stream as UTF-8: transcoded from ``encoding``; without one, refused when it is
    UTF-16 or UTF-32 (named, with the flag that reads it) rather than failing as "not UTF-8"."""
    if encoding is not None and encoding not in ("utf-8", "utf-8-sig"):
        return transcoded(stream, encoding, name)
    try:
        head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: cannot be read: {read_failure(exc)}") from None
    wide = sniff_wide_encoding(head)
    if wide is not None:
        what, flag = wide
        raise InputError(
            f"{name}: is {what} text, not UTF-8; read it with --encoding {flag} "
            "(or SPOTIFY_ADS_ENCODING)"
        )
    return stream


def open_source(
    path: str,
    fmt: Format = "auto",
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Source:
    """Open ``path`` (``-`` for stdin) and read its column names; raise InputError if unusable.

    ``encoding`` is a codec name as :func:`~spotify_audience_sync.settings.codec_name` returns
    it (text formats only; None or UTF-8 reads the bytes as they are). ``delimiter`` (CSV and
    TSV) is one character; None sniffs it from the header line (:func:`sniff_delimiter`).
    """
    if delimiter is not None:
        delimiter = delimiter_named(delimiter)
    kind = detect_format(path, fmt)
    if kind == "parquet":
        return _open_parquet(path)
    stream, raw, name = _open_stream(path)
    try:
        stream = _decoded(stream, name, encoding)
        if kind == "ndjson":
            source = _open_ndjson(stream, name, chunk_bytes)
        else:
            source = _open_delimited(stream, name, kind, chunk_bytes, delimiter)
    except BaseException:
        if path != "-":
            stream.close()
            raw.close()
        raise
    source._raw = raw
    source._owned = path != "-"
    return source


def _open_delimited(
    stream: BinaryIO, name: str, kind: Format, chunk_bytes: int, delimiter: str | None
) -> Source:
    if delimiter is None and kind == "tsv":
        delimiter = "\t"
    columns, delimiter = _read_header(stream, name, delimiter)
    header = delimiter.join(f"c{i}" for i in range(len(columns))).encode() + b"\n"
    return Source(
        name,
        kind,
        columns,
        _stream=stream,
        _header=header,
        chunk_bytes=chunk_bytes,
        delimiter=delimiter,
    )


def _read_header(stream: BinaryIO, name: str, delimiter: str | None) -> tuple[list[str], str]:
    """The header row's column names, stripped, and the delimiter (sniffed when None);
    InputError if it is not a usable header."""
    try:
        header = stream.readline(_MAX_HEADER_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # e.g. a truncated or corrupt gzip stream
        raise InputError(f"{name}: cannot be read: {read_failure(exc)}") from None
    header = header.removeprefix(_BOM)
    if not header.strip():
        raise InputError(f"{name}: is empty (expected a header row naming the columns)")
    body = header.rstrip(b"\r\n")
    if b"\r" in body:
        if not header.endswith(b"\n"):
            raise InputError(f"{name}: line ends are CR only (old Mac format); convert to LF")
        raise InputError(f"{name}: the header row has a stray carriage return (CR) inside it")
    if len(header) > _MAX_HEADER_BYTES:
        raise InputError(f"{name}: the header row runs past {_MAX_HEADER_BYTES >> 20} MiB")
    if body.count(b'"') % 2:
        raise InputError(
            f"{name}: the header row has an unclosed double quote (a column name cannot span lines)"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: line 1 (the header row) {NOT_UTF8}") from None
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    try:
        columns = [
            c.strip() for c in next(csv.reader([text], delimiter=delimiter, skipinitialspace=True))
        ]
    except csv.Error:
        raise InputError(f"{name}: the header row is not valid CSV") from None
    first: dict[str, int] = {}
    for number, column in enumerate(columns, 1):
        if column and first.setdefault(column, number) != number:
            if looks_like_data(column):
                raise InputError(
                    f"{name}: columns {first[column]} and {number} of the first row hold the "
                    "same value, which looks like data: does the file lack a header row?"
                )
            raise InputError(
                f"{name}: the header row names column {column!r} twice "
                f"(columns {first[column]} and {number}); rename one"
            )
    return columns, delimiter


def _open_ndjson(stream: BinaryIO, name: str, chunk_bytes: int) -> Source:
    """Columns are the keys of the first chunk's objects, in first-seen order (see above)."""
    try:
        head = stream.read(chunk_bytes)
        if head and not head.endswith(b"\n"):
            head += stream.readline(MAX_RECORD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: cannot be read: {read_failure(exc)}") from None
    head = head.removeprefix(_BOM)
    if not head.strip():
        raise InputError(f"{name}: is empty (expected one JSON object per line)")
    columns = _ndjson_keys(head, name)
    return Source(
        name,
        "ndjson",
        columns,
        _stream=stream,
        _prefix=head,
        chunk_bytes=chunk_bytes,
        _first_line=1,
    )


def _ndjson_keys(head: bytes, name: str) -> list[str]:
    """The union of the keys of the objects in ``head``, in first-seen order."""
    keys: dict[str, None] = {}
    for number, line in enumerate(head.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            raise InputError(f"{name}: line {number} {NOT_UTF8}") from None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise InputError(f"{name}: line {number} is not a JSON object")
        keys.update(dict.fromkeys(record))
    return list(keys)


def _open_parquet(path: str) -> Source:
    if path == "-":
        raise InputError("<stdin>: Parquet cannot be read from stdin; pass a file path")
    if is_url(path):
        raise InputError(
            f"{mask_url(path)}: Parquet is read from a local file only; download it, or query "
            "it with --database-url duckdb:// and read_parquet(...)"
        )
    file = Path(path)
    if not file.exists():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        columns = pl.scan_parquet(file).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from exc
    return Source(path, "parquet", columns, _path=file)
