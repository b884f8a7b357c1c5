"""``duckdb://``: embedded DuckDB, for ``read_parquet('x/*.parquet')`` and ``read_csv(...)`` in
the query itself, or a DuckDB file opened read-only. An extra: ``[duckdb]`` (DuckDB and the
pyarrow its Arrow reader needs).

``duckdb://`` and ``duckdb:///:memory:`` are in memory; ``duckdb:///rel/path.db`` and
``duckdb:////abs/path.db`` a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl

from spotify_audience_sync.errors import InputError, InputNotFoundError
from spotify_audience_sync.redact import redact_url
from spotify_audience_sync.segment.warehouse.base import arrow_frames, words

__all__ = ["connect", "database_of"]

# DuckDB errors of these kinds describe the query or files, never row values.
_SAFE = ("ParserException", "CatalogException", "BinderException", "IOException")


def database_of(url: str) -> str:
    """``duckdb://`` and ``duckdb:///:memory:`` → memory; ``duckdb:///p`` → the path ``p``."""
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:", ":memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise InputError(
            f"query on {redact_url(url)}: a DuckDB URL is duckdb:///relative/path.db, "
            "duckdb:////absolute/path.db or duckdb:// (in memory)"
        )
    return unquote(rest[1:].split("?", 1)[0])


def _error(name: str, exc: Exception, scrub: Callable[[str], str], when: str) -> InputError:
    kind = type(exc).__name__
    text = scrub(str(exc)).split("\n", 1)[0]
    if kind not in _SAFE:
        text = words(text.split("Error: ", 1)[-1])
    return InputError(f"{name}: the query failed{when} ({' '.join(text.split())})")


class DuckDBConnection:
    format = "duckdb"
    text_type = "VARCHAR"

    def __init__(self, url: str, name: str, scrub: Callable[[str], str]) -> None:
        import duckdb

        self._name = name
        self._scrub = scrub
        self._duckdb_error = duckdb.Error
        database = database_of(url)
        if database != ":memory:" and not Path(database).is_file():
            raise InputNotFoundError(f"{name}: no DuckDB file {database}")
        try:
            self._conn: Any = duckdb.connect(database, read_only=database != ":memory:")
        except duckdb.Error as exc:
            raise _error(name, exc, scrub, "") from None

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def columns(self, query: str) -> list[str]:
        try:
            relation = self._conn.sql(query)  # binds the query and describes it; reads no row
            if relation is None:
                raise InputError(f"{self._name}: the statement returns no rows (expected a query)")
            return list(relation.columns)
        except self._duckdb_error as exc:
            self._conn.close()
            raise _error(self._name, exc, self._scrub, "") from None
        except BaseException:
            self._conn.close()
            raise

    def stream(self, sql: str, batch_rows: int) -> Iterator[pl.DataFrame]:
        try:
            reader = self._conn.sql(sql).to_arrow_reader(batch_rows)
        except self._duckdb_error as exc:
            raise _error(self._name, exc, self._scrub, "") from None

        def failed(exc: Exception) -> InputError:
            return _error(self._name, exc, self._scrub, " while rows were read")

        yield from arrow_frames(reader, batch_rows, failed, self._name)

    def fails(self, sql: str) -> bool:
        try:
            self._conn.sql(sql).fetchall()
        except self._duckdb_error:
            return True
        return False

    def close(self) -> None:
        self._conn.close()


def connect(url: str, name: str, scrub: Callable[[str], str]) -> DuckDBConnection:
    return DuckDBConnection(url, name, scrub)
