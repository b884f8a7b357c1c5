"""``postgresql://`` and ``postgres://``: psycopg 3, the driver the state backend uses too.

Rows stream through a server-side cursor (``DECLARE ... CURSOR``; ``fetchmany`` of
``batch_rows``), so memory holds one batch whatever the result's size. Chosen over ADBC by
measurement (``benchmarks/bench_postgres_drivers.py``, 4M rows, README "Dependencies"): nearly
the same rows/s in less memory, and without pyarrow's 170 MB in every install.

Errors keep the SQLSTATE and the server's primary message only where its class names the
query's own words (syntax, unknown column, connection, authentication); where it could quote a
row value (a failed cast, a constraint) only its words before the first quote or colon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import polars as pl

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.warehouse.base import words

if TYPE_CHECKING:
    import psycopg

__all__ = ["connect"]

CONNECT_TIMEOUT_SECONDS = 15
# SQLSTATE classes whose messages name only the query's own words, never a row's values:
# connection, feature, auth, catalog/schema, syntax or access rule, resources, shutdown.
_WORDS_ONLY_CLASSES = frozenset({"08", "0A", "28", "3D", "3F", "42", "53", "57"})


def _conninfo(url: str) -> str:
    """libpq's URL, with a connect timeout unless it sets one: a dead host must not hang a
    schedule. ``postgres://`` is spelled ``postgresql://`` (both are libpq's)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "postgres":
        parts = parts._replace(scheme="postgresql")
    if "connect_timeout" not in dict(parse_qsl(parts.query)):
        query = f"{parts.query}&" if parts.query else ""
        parts = parts._replace(query=f"{query}connect_timeout={CONNECT_TIMEOUT_SECONDS}")
    return urlunsplit(parts)


def _connect_error(name: str, exc: Exception, scrub: Callable[[str], str]) -> InputError:
    text = scrub(str(exc)).strip().split("\n", 1)[0]
    reason = text.rsplit(" failed: ", 1)[-1].replace("FATAL:", "").strip()
    lowered = reason.lower()
    if "connection refused" in lowered:
        what = "connection refused"
    elif "authentication" in lowered or "role" in lowered or "pg_hba.conf" in lowered:
        what = "authentication failed"
    elif "timeout" in lowered or "timed out" in lowered:
        what = "connection timed out"
    else:
        what = "cannot connect"
    return InputError(f"{name}: {what} ({' '.join(reason.split())})")


def _sql_error(name: str, exc: Exception, scrub: Callable[[str], str], when: str) -> InputError:
    """A failed statement: SQLSTATE and primary message only (DETAIL can hold row values)."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or "") if diag else ""
    if not primary:
        primary = str(exc).split("\n", 1)[0]
    primary = scrub(primary).strip()
    if sqlstate[:2] not in _WORDS_ONLY_CLASSES:
        primary = words(primary)
    state = f"SQLSTATE {sqlstate}: " if sqlstate else ""
    return InputError(f"{name}: the query failed{when} ({state}{primary})")


class PostgresConnection:
    """A psycopg connection in one read-only-in-practice transaction per statement."""

    format = "postgresql"
    text_type = "text"

    def __init__(self, url: str, name: str, scrub: Callable[[str], str]) -> None:
        import psycopg

        self._name = name
        self._scrub = scrub
        self._error = psycopg.Error
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                _conninfo(url), application_name="spotify-audience-sync"
            )
        except psycopg.Error as exc:
            raise _connect_error(name, exc, scrub) from None
        self._cursors = 0

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def _cursor(self) -> psycopg.ServerCursor[Any]:
        self._cursors += 1
        return self._conn.cursor(name=f"sas_{self._cursors}")

    def columns(self, query: str) -> list[str]:
        # DECLARE describes the portal: its columns are known before any row is fetched.
        try:
            with self._cursor() as cursor:
                cursor.execute(query)
                names = [column.name for column in cursor.description or []]
        except self._error as exc:
            self._conn.close()
            raise _sql_error(self._name, exc, self._scrub, "") from None
        self._conn.rollback()
        return names

    def stream(self, sql: str, batch_rows: int) -> Iterator[pl.DataFrame]:
        with self._cursor() as cursor:
            try:
                cursor.execute(sql)
            except self._error as exc:
                raise _sql_error(self._name, exc, self._scrub, "") from None
            names = [column.name for column in cursor.description or []]
            schema = dict.fromkeys(names, pl.String)
            while True:
                try:
                    rows = cursor.fetchmany(batch_rows)
                except self._error as exc:
                    raise _sql_error(
                        self._name, exc, self._scrub, " while rows were read"
                    ) from None
                if not rows:
                    break
                yield pl.DataFrame(rows, schema=schema, orient="row")
        self._conn.rollback()

    def fails(self, sql: str) -> bool:
        self._conn.rollback()  # a failed statement aborted the transaction
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                cursor.fetchall()
        except self._error:
            return True
        finally:
            self._conn.rollback()
        return False

    def close(self) -> None:
        self._conn.close()


def connect(url: str, name: str, scrub: Callable[[str], str]) -> PostgresConnection:
    """Open ``url`` (psycopg is a core dependency: no extra needed)."""
    return PostgresConnection(url, name, scrub)
