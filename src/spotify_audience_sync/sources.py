"""Segment inputs: CSV (plain, gzip, stdin), NDJSON and Parquet, read in bounded batches.

The only module that reads input. Text formats are read through our own chunker instead of a
memory map, so peak memory is set by the chunk size, not the file size, and the same code serves
files, gzip streams and stdin. Every column is read as text: a phone's leading zero or ``+``
must survive until the identifier rules see it. Errors name the file and never quote a value.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl

from spotify_audience_sync.errors import InputError, InputNotFoundError

__all__ = ["DEFAULT_CHUNK_BYTES", "Format", "Source", "detect_format", "open_source"]

Format = Literal["auto", "csv", "tsv", "ndjson", "parquet"]

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
_MAX_RECORD_BYTES = 64 * 1024 * 1024  # one CSV record (quoted newlines included) at most
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
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return _SUFFIXES.get(suffixes[-1], "csv") if suffixes else "csv"


@dataclass
class Source:
    """An opened input: its display name, its columns, and a way to read them in batches."""

    name: str
    format: Format
    columns: list[str]
    _stream: BinaryIO | None = field(default=None, repr=False)
    _header: bytes = field(default=b"", repr=False)
    _prefix: bytes = field(default=b"", repr=False)
    _raw: BinaryIO | None = field(default=None, repr=False)
    _owned: bool = field(default=True, repr=False)
    _path: Path | None = field(default=None, repr=False)
    chunk_bytes: int = DEFAULT_CHUNK_BYTES

    def batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        """Yield the named columns as text, a bounded batch at a time, in file order."""
        if self.format == "parquet":
            yield from self._parquet_batches(columns)
        else:
            yield from self._text_batches(columns)

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
            raise InputError(
                f"{self.name}: cannot read Parquet data ({type(exc).__name__})"
            ) from exc

    def _text_batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        assert self._stream is not None
        line = 2 if self.format != "ndjson" else 1  # first data line, for messages
        chunks = _record_chunks(
            self._stream, self.name, self.chunk_bytes, self._prefix, quoted=self.format != "ndjson"
        )
        for chunk in chunks:
            try:
                batch = self._parse(chunk, columns)
            except pl.exceptions.PolarsError as exc:
                raise _parse_error(self.name, self.format, line, exc) from None
            line += chunk.count(b"\n")
            yield batch

    def _parse(self, chunk: bytes, columns: list[str]) -> pl.DataFrame:
        if self.format == "ndjson":
            frame = pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None)
            missing = [c for c in columns if c not in frame.columns]
            frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
            return frame.select(pl.col(columns).cast(pl.String))
        return pl.read_csv(
            io.BytesIO(self._header + chunk),
            columns=columns,
            separator="\t" if self.format == "tsv" else ",",
            infer_schema=False,
            encoding="utf8",
            raise_if_empty=False,
        )


def _parse_error(name: str, fmt: Format, line: int, exc: Exception) -> InputError:
    """Translate a polars parse failure; the message never quotes the offending data."""
    text = str(exc).lower()
    if "utf-8" in text or "utf8" in text:
        why = "is not valid UTF-8 (convert it, e.g. `iconv -f latin1 -t utf-8`)"
    elif fmt == "ndjson":
        why = "has a line that is not a JSON object"
    else:
        why = "has a malformed row (wrong number of fields or an unclosed quote)"
    return InputError(f"{name}: {why}, in the chunk starting at line {line}")


def _record_chunks(
    stream: BinaryIO, name: str, size: int, prefix: bytes, *, quoted: bool
) -> Iterator[bytes]:
    """Yield runs of whole records, cutting only at a newline outside double quotes."""
    rest = prefix
    while True:
        try:
            block = stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip
            raise InputError(f"{name}: cannot be read to the end ({type(exc).__name__})") from None
        if not block:
            if rest.strip():
                yield rest if rest.endswith(b"\n") else rest + b"\n"
            return
        data = rest + block
        cut = data.rfind(b"\n") + 1
        # A CSV newline inside quotes is data: an odd quote count before the cut means we are
        # inside a quoted field, so step back to an earlier newline ("" escapes keep parity).
        while quoted and cut and data.count(b'"', 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut - 1) + 1
        if cut:
            yield data[:cut]
        elif len(data) > _MAX_RECORD_BYTES:
            raise InputError(
                f"{name}: a record runs past {_MAX_RECORD_BYTES >> 20} MiB without ending "
                "(an unclosed double quote?)"
            )
        rest = data[cut:]


def _open_stream(path: str) -> tuple[BinaryIO, BinaryIO, str]:
    """Open a path (or ``-``) for binary reading, looking through gzip by its magic bytes."""
    if path == "-":
        stdin = sys.stdin.buffer
        # peek() is needed to sniff gzip; a test runner's stdin may lack it.
        raw: io.BufferedReader = (
            stdin if hasattr(stdin, "peek") else io.BufferedReader(stdin)  # type: ignore[assignment,arg-type]
        )
        name = "<stdin>"
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
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, name  # type: ignore[return-value]
    return raw, raw, name


def open_source(
    path: str, fmt: Format = "auto", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Source:
    """Open ``path`` (``-`` for stdin) and read its column names; raise InputError if unusable."""
    kind = detect_format(path, fmt)
    if kind == "parquet":
        return _open_parquet(path)
    stream, raw, name = _open_stream(path)
    try:
        if kind == "ndjson":
            source = _open_ndjson(stream, name, chunk_bytes)
        else:
            source = _open_delimited(stream, name, kind, chunk_bytes)
    except BaseException:
        if path != "-":
            stream.close()
            raw.close()
        raise
    source._raw = raw
    source._owned = path != "-"
    return source


def _open_delimited(stream: BinaryIO, name: str, kind: Format, chunk_bytes: int) -> Source:
    try:
        header = stream.readline()
    except (OSError, EOFError, zlib.error) as exc:  # e.g. a truncated or corrupt gzip stream
        raise InputError(f"{name}: cannot be read ({type(exc).__name__})") from exc
    header = header.removeprefix(_BOM)
    if not header.strip():
        raise InputError(f"{name}: is empty (expected a header row naming the columns)")
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: header row is not valid UTF-8") from None
    delimiter = "\t" if kind == "tsv" else ","
    columns = next(csv.reader([text], delimiter=delimiter))
    columns = [c.strip() for c in columns]
    if not header.endswith(b"\n"):
        header += b"\n"
    return Source(name, kind, columns, _stream=stream, _header=header, chunk_bytes=chunk_bytes)


def _open_ndjson(stream: BinaryIO, name: str, chunk_bytes: int) -> Source:
    """Column names come from the first object; later objects may lack some keys (nulls)."""
    try:
        line = stream.readline()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: cannot be read ({type(exc).__name__})") from exc
    line = line.removeprefix(_BOM)
    if not line.strip():
        raise InputError(f"{name}: is empty (expected one JSON object per line)")
    try:
        columns = pl.read_ndjson(io.BytesIO(line)).columns
    except pl.exceptions.PolarsError:
        raise InputError(f"{name}: line 1 is not a JSON object") from None
    return Source(name, "ndjson", columns, _stream=stream, _prefix=line, chunk_bytes=chunk_bytes)


def _open_parquet(path: str) -> Source:
    if path == "-":
        raise InputError("<stdin>: Parquet cannot be read from stdin; pass a file path")
    file = Path(path)
    if not file.exists():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        columns = pl.scan_parquet(file).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from exc
    return Source(path, "parquet", columns, _path=file)
