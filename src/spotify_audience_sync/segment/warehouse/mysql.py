"""``mysql://`` and ``mariadb://``: PyMySQL, an extra (``[mysql]``).

PyMySQL over mysqlclient: it is pure Python (one wheel, no libmysqlclient and no compiler on
a slim image), maintained, and speaks both servers' protocol; the rows' text is what the
server sends either way, and the pipeline after the read costs more than decoding it.

Rows stream through an unbuffered cursor (``SSCursor``, ``fetchmany`` of ``batch_rows``): the
server sends rows as they are read, so memory holds one batch whatever the result's size.

Errors, by the server's error number:

* cannot reach the server, or it went away (2002, 2003, 2006, 2013): :class:`TransientError`
  (exit 75, a later run may succeed);
* access denied, unknown database (1044, 1045, 1049, 1698): :class:`ConfigError` (exit 78,
  the URL is wrong);
* anything in the query: :class:`InputError` (exit 65). Messages of syntax and unknown-name
  errors are kept (they quote the query's own words); any other keeps only its leading words
  (a value could follow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import polars as pl

from spotify_audience_sync.errors import ConfigError, InputError, SyncError, TransientError
from spotify_audience_sync.segment.warehouse.base import words

__all__ = ["connect", "connect_args"]

CONNECT_TIMEOUT_SECONDS = 15
_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013})
_DENIED = frozenset({1044, 1045, 1049, 1698})
# Syntax, unknown column/table/function, ambiguous column, access to a table: query words only.
_WORDS_ONLY = frozenset({1054, 1064, 1052, 1142, 1146, 1305, 1060, 1248})
_PARAMS = frozenset({"charset", "connect_timeout", "ssl_ca", "ssl_disabled"})


def connect_args(url: str, name: str) -> dict[str, Any]:
    """PyMySQL's keyword arguments for ``url``; a parameter it does not know is a ConfigError."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise ConfigError(
            f"{name}: unknown URL parameter {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_PARAMS))})"
        )
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError(f"{name}: the port is not a number") from None
    args: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": port,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
        "charset": params.get("charset", "utf8mb4"),
        "connect_timeout": int(params.get("connect_timeout", CONNECT_TIMEOUT_SECONDS)),
    }
    if "ssl_ca" in params:
        args["ssl"] = {"ca": params["ssl_ca"]}
    if params.get("ssl_disabled", "").lower() in ("1", "true"):
        args["ssl_disabled"] = True
    return args


def _error(name: str, exc: Exception, scrub: Callable[[str], str], when: str) -> SyncError:
    """A PyMySQL error as ours: its type from the server's error number."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    text = scrub(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
    text = " ".join(text.split())
    if code in _UNREACHABLE:
        return TransientError(f"{name}: cannot reach the server (error {code}: {words(text)})")
    if code in _DENIED:
        return ConfigError(f"{name}: access denied (error {code}: {text})")
    if code not in _WORDS_ONLY:
        text = words(text)
    label = f"error {code}: " if code else ""
    return InputError(f"{name}: the query failed{when} ({label}{text})")


class MySQLConnection:
    format = "mysql"
    text_type = "CHAR"

    def __init__(self, url: str, name: str, scrub: Callable[[str], str]) -> None:
        import pymysql  # type: ignore[import-untyped,unused-ignore]

        self._name = name
        self._scrub = scrub
        self._error = pymysql.Error
        self._unbuffered = pymysql.cursors.SSCursor
        try:
            self._conn = pymysql.connect(**connect_args(url, name))
        except pymysql.Error as exc:
            raise _error(name, exc, scrub, "") from None

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def columns(self, query: str) -> list[str]:
        # LIMIT 0 over the query: the server describes the result without producing a row.
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(f"SELECT * FROM ({query}\n) AS q LIMIT 0")
                return [column[0] for column in cursor.description or ()]
        except self._error as exc:
            self._conn.close()
            raise _error(self._name, exc, self._scrub, "") from None

    def stream(self, sql: str, batch_rows: int) -> Iterator[pl.DataFrame]:
        cursor = self._conn.cursor(self._unbuffered)
        try:
            try:
                cursor.execute(sql)
            except self._error as exc:
                raise _error(self._name, exc, self._scrub, "") from None
            schema = dict.fromkeys((c[0] for c in cursor.description or ()), pl.String)
            while True:
                try:
                    rows = cursor.fetchmany(batch_rows)
                except self._error as exc:
                    raise _error(self._name, exc, self._scrub, " while rows were read") from None
                if not rows:
                    break
                yield pl.DataFrame(rows, schema=schema, orient="row")
        finally:
            self._close_quietly(cursor)

    def _close_quietly(self, cursor: Any) -> None:
        """Close the cursor; an unbuffered one left mid-result drains it, and a dead connection
        has nothing to drain."""
        with suppress(self._error):
            cursor.close()

    def fails(self, sql: str) -> bool:
        try:
            self._conn.ping(reconnect=True)
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                cursor.fetchall()
        except self._error:
            return True
        return False

    def close(self) -> None:
        with suppress(self._error):  # already closed
            self._conn.close()


def connect(url: str, name: str, scrub: Callable[[str], str]) -> MySQLConnection:
    return MySQLConnection(url, name, scrub)
