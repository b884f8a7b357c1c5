"""What every query driver shares: the :class:`Connection` protocol a driver module implements,
and :class:`QuerySource`, which turns any such connection into a source the pipeline reads.

A driver does four things: name the query's columns before any row is read, stream a SQL
statement's rows as polars String frames (raising :class:`InputError` with a filtered message),
say whether a probe statement fails, and close. Everything else (casting the wanted columns to
text in the database, bounding batches, pinning a failure to a column, refusing duplicate
names) is written once, here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import polars as pl

from spotify_audience_sync.errors import InputError

if TYPE_CHECKING:
    from spotify_audience_sync.segment.sources import DeferredBatch

__all__ = ["Connection", "QuerySource", "as_strings", "slices", "words"]


class Connection(Protocol):
    """One open database connection, as :class:`QuerySource` drives it."""

    #: The report's ``format``: ``postgresql``, ``duckdb``, ``mysql``.
    format: str
    #: The SQL type a value is cast to so that the database formats it as its own text.
    text_type: str

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted for this database's SQL."""
        ...

    def columns(self, query: str) -> list[str]:
        """The query's column names, read from its description (no row is read)."""
        ...

    def stream(self, sql: str, batch_rows: int) -> Iterator[pl.DataFrame]:
        """Run ``sql`` and yield its rows as String frames of at most ``batch_rows`` rows."""
        ...

    def fails(self, sql: str) -> bool:
        """Whether running ``sql`` (a one-row probe) fails; leaves the connection usable."""
        ...

    def close(self) -> None: ...


class QuerySource:
    """A query's result with the interface of :class:`~..sources.Source`.

    ``batches(columns)`` yields the named columns as String, at most ``batch_rows`` rows at a
    time; it runs the query once per call. ``close()`` releases the connection.
    """

    def __init__(self, name: str, query: str, conn: Connection, batch_rows: int) -> None:
        self.name = name
        self.format = conn.format
        self._query = query
        self._conn = conn
        self._batch_rows = batch_rows
        self._closed = False
        self.columns = conn.columns(query)

    def batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        """Yield the named columns as text, a bounded batch at a time, in the query's order."""
        try:
            yield from self._conn.stream(self._as_text(columns), self._batch_rows)
        except InputError as exc:
            where = self._at_fault(columns)
            raise (InputError(f"{exc}{where}") if where else exc) from None

    def deferred_batches(self, columns: list[str]) -> Iterator[DeferredBatch]:
        """:meth:`batches` in the shape the pipeline asks for (rows arrive parsed already);
        ``line_of`` gives the 1-based row of the query's result (``unit`` is ``"row"``)."""
        from spotify_audience_sync.segment.sources import ready_batches

        return ready_batches(self.batches(columns))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> QuerySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- SQL ---------------------------------------------------------------------------------
    def _as_text(self, columns: list[str]) -> str:
        """Only the wanted columns, each cast to text by the database itself: a phone's leading
        zero survives, as in a CSV export, and nothing else crosses the wire."""
        conn = self._conn
        wanted = ", ".join(
            f"CAST(q.{conn.quote(c)} AS {conn.text_type}) AS {conn.quote(c)}" for c in columns
        )
        return f"SELECT {wanted} FROM ({self._query}\n) AS q"

    def _probe(self, column: str | None) -> str:
        """A one-row query that fails when the query does (``column`` None), or when computing
        ``column`` as text does."""
        if column is None:
            return f"SELECT count(*) FROM ({self._query}\n) AS q"
        cast = f"CAST(q.{self._conn.quote(column)} AS {self._conn.text_type})"
        return f"SELECT max(length({cast})) FROM ({self._query}\n) AS q"

    def _at_fault(self, wanted: list[str]) -> str:
        """`` in column 'x'`` for the first wanted column whose computation fails alone, or
        ``""`` when the query fails without its columns too (or none fails alone). Run on the
        failure path only."""
        from spotify_audience_sync.segment.sources import looks_like_data

        if self._conn.fails(self._probe(None)):
            return ""
        for number, column in enumerate(wanted, 1):
            if self._conn.fails(self._probe(column)):
                return (
                    f" in column {number}" if looks_like_data(column) else f" in column {column!r}"
                )
        return ""


# --- helpers for driver modules ---------------------------------------------------------------
def words(text: str) -> str:
    """A message's words before the first quote or colon: the part that quotes no value."""
    cut = re.split(r"[\"':]", text, maxsplit=1)[0]
    return " ".join(cut.split()) or "error"


def as_strings(frame: pl.DataFrame, columns: list[str], name: str) -> pl.DataFrame:
    """The columns as String; a column polars cannot cast is named (its type, never a value)."""
    from spotify_audience_sync.segment.sources import looks_like_data

    try:
        return frame.select(pl.col(columns).cast(pl.String))
    except pl.exceptions.PolarsError:
        for number, column in enumerate(columns, 1):
            try:
                frame.select(pl.col(column).cast(pl.String))
            except pl.exceptions.PolarsError:
                label = f"column {number}" if looks_like_data(column) else repr(column)
                raise InputError(
                    f"{name}: column {label} (type {frame.schema[column]}) cannot be read as text"
                ) from None
        raise


def slices(frame: pl.DataFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    """``frame`` in pieces of at most ``batch_rows`` rows."""
    for offset in range(0, frame.height, batch_rows):
        yield frame.slice(offset, batch_rows)


def arrow_frames(
    reader: object, batch_rows: int, failed: Callable[[Exception], InputError], name: str
) -> Iterator[pl.DataFrame]:
    """Arrow record batches (a reader with ``read_next_batch``) → polars String frames of at
    most ``batch_rows`` rows. For the drivers that speak Arrow (DuckDB)."""
    read_next = reader.read_next_batch  # type: ignore[attr-defined]
    while True:
        try:
            batch = read_next()
        except StopIteration:
            return
        except Exception as exc:  # any driver or Arrow error: translated, message filtered
            raise failed(exc) from None
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield from slices(as_strings(frame, frame.columns, name), batch_rows)
