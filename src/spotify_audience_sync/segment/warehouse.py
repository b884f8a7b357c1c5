"""Warehouse sources: a SQL query's result, streamed in bounded batches, read like a file.

=============================  ===========================================================
URL                            read through
=============================  ===========================================================
``postgresql://``              ADBC's PostgreSQL driver (libpq, the server's binary COPY),
``postgres://``                Arrow record batches
``duckdb://``,                 embedded DuckDB in memory (for ``read_parquet('x/*.parquet')``
``duckdb:///:memory:``         and ``read_csv(...)`` in the query itself)
``duckdb:///rel/path.db``,     embedded DuckDB on a file, opened read-only
``duckdb:////abs/path.db``
mysql, mssql, oracle, sqlite,  connectorx's Arrow stream (the engine behind polars'
redshift, clickhouse, trino,   ``read_database_uri``), when connectorx is installed;
bigquery                       untested here
=============================  ===========================================================

Column names come from the query's description before any row is read, so a missing column
fails at once. PostgreSQL and DuckDB then run ``SELECT CAST(c AS text) ... FROM (query)`` over
the wanted columns only: the database formats values as its own text (a phone's leading zero
survives, as in a CSV export) and nothing else crosses the wire.

Errors are :class:`InputError` named ``query on <url>`` with the password masked. A driver's
message is kept only where it names the query's own words (syntax, unknown column or table,
connection, authentication); where it could quote a row value (a failed cast, a constraint,
a message raised while rows stream) only its words before the first quote or colon are kept.

Such a failure is then pinned to a column when one is at fault: on the failure path only, the
query is run again once without its columns (``count(*)``) and once per wanted column (an
aggregate that makes the database compute it), and the column whose run fails is named. A
failure that is not a column's (in the WHERE clause, say) names none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import polars as pl
from pydantic import SecretStr

from spotify_audience_sync.errors import ConfigError, InputError, InputNotFoundError

if TYPE_CHECKING:
    from spotify_audience_sync.segment.sources import DeferredBatch, Format, Source

__all__ = ["DEFAULT_BATCH_ROWS", "QuerySource", "open_input", "open_query", "redact_url"]

DEFAULT_BATCH_ROWS = 100_000
CONNECT_TIMEOUT_SECONDS = 15
_CONNECTORX_SCHEMES = frozenset(
    {"mysql", "mssql", "oracle", "sqlite", "redshift", "clickhouse", "trino", "bigquery"}
)
_SECRET_PARAMS = re.compile(r"pass|pwd|secret|token|key", re.I)
# SQLSTATE classes whose messages name only the query's own words, never a row's values:
# connection, feature, auth, catalog/schema, syntax or access rule, resources, shutdown.
_WORDS_ONLY_CLASSES = frozenset({"08", "0A", "28", "3D", "3F", "42", "53", "57"})
# DuckDB errors of these kinds describe the query or files, never row values.
_DUCKDB_SAFE = ("ParserException", "CatalogException", "BinderException", "IOException")

Batches = Callable[[list[str]], Iterator[pl.DataFrame]]


def redact_url(url: str) -> str:
    """``scheme://user:***@host/db``: the URL with its password and secret parameters masked."""
    if "://" not in url:
        return "<database URL without a scheme>"
    scheme, rest = url.split("://", 1)
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"{user}@{host}"
    pairs = [pair.partition("=") for pair in query.split("&")] if query else []
    query = "&".join(
        f"{key}{eq}{'***' if _SECRET_PARAMS.search(key) and value else value}"
        for key, eq, value in pairs
    )
    return f"{scheme}://{netloc}{slash}{path}{question}{query}{hash_mark}{fragment}"


class QuerySource:
    """A query's result with the interface of :class:`~.sources.Source`.

    ``batches(columns)`` yields the named columns as String, at most ``batch_rows`` rows at a
    time; it runs the query once per call. ``close()`` releases the connection.
    """

    def __init__(
        self,
        name: str,
        fmt: str,
        columns: list[str],
        batches: Batches,
        close: Callable[[], None],
    ) -> None:
        self.name = name
        self.format = fmt
        self.columns = columns
        self._batches = batches
        self._close = close

    def batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        """Yield the named columns as text, a bounded batch at a time, in the query's order."""
        return self._batches(columns)

    def deferred_batches(self, columns: list[str]) -> Iterator[DeferredBatch]:
        """:meth:`batches` in the shape the pipeline asks for (rows arrive parsed already);
        ``line_of`` gives the 1-based row of the query's result (``unit`` is ``"row"``)."""
        from spotify_audience_sync.segment.sources import ready_batches

        return ready_batches(self._batches(columns))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        close, self._close = self._close, lambda: None
        close()

    def __enter__(self) -> QuerySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_query(
    query: str, database_url: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> QuerySource:
    """Connect, describe ``query`` (no row is read yet), and return it as a source."""
    name = f"query on {redact_url(database_url)}"
    query = query.strip().rstrip(";").strip()
    if not query:
        raise InputError(f"{name}: the query is empty")
    scheme = urlsplit(database_url).scheme.lower() if "://" in database_url else ""
    scrub = _scrubber(database_url)
    if scheme in ("postgresql", "postgres"):
        source = _open_postgres(query, database_url, name, batch_rows, scrub)
    elif scheme == "duckdb":
        source = _open_duckdb(query, database_url, name, batch_rows, scrub)
    elif scheme in _CONNECTORX_SCHEMES:
        source = _open_connectorx(query, database_url, name, batch_rows, scrub)
    else:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise InputError(
            f"{name}: unknown database URL scheme ({shown}); use postgresql://, duckdb:// "
            f"or one connectorx reads ({', '.join(sorted(_CONNECTORX_SCHEMES))})"
        )
    twice = sorted(c for c, n in Counter(source.columns).items() if n > 1)
    if twice:
        from spotify_audience_sync.segment.sources import looks_like_data

        source.close()
        listed = ["(a name that looks like data)" if looks_like_data(c) else repr(c) for c in twice]
        raise InputError(
            f"{name}: the query returns more than one column named "
            f"{', '.join(listed)}; give them distinct aliases"
        )
    return source


def open_input(
    input_path: str | None,
    fmt: Format = "auto",
    query: str | None = None,
    database_url: str | SecretStr | None = None,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Source:
    """The segment: a file (or ``-``), or a query on ``database_url``; exactly one of them.

    ``encoding`` applies to text files (see :func:`.sources.open_source`); a query's rows
    arrive as text already.
    """
    from spotify_audience_sync.segment.sources import open_source

    if (input_path is None) == (query is None):
        raise ConfigError("give either INPUT or --query, not both and not neither")
    if input_path is not None:
        return open_source(input_path, fmt, encoding=encoding, delimiter=delimiter)
    assert query is not None
    if isinstance(database_url, SecretStr):
        database_url = database_url.get_secret_value()
    if not database_url:
        raise ConfigError("--query needs --database-url (or SPOTIFY_ADS_DATABASE_URL)")
    # prepare_segment reads only name, format, columns and deferred_batches(), and the report takes
    # any format string: a QuerySource is a Source in every way the pipeline looks at.
    return cast("Source", open_query(query, database_url, batch_rows=batch_rows))


# --- shared helpers ---------------------------------------------------------------------------
def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _as_text(query: str, columns: list[str], text_type: str) -> str:
    """Only the wanted columns, each cast to text by the database itself."""
    wanted = ", ".join(f"CAST(q.{_quote(c)} AS {text_type}) AS {_quote(c)}" for c in columns)
    return f"SELECT {wanted} FROM ({query}\n) AS q"


def _scrubber(url: str) -> Callable[[str], str]:
    """Remove the URL and its password from a driver's message, however it was echoed."""
    secrets = [url]
    if "://" in url:
        password = urlsplit(url).password
        if password:
            secrets += [password, unquote(password)]
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub


def _words(text: str) -> str:
    """A message's words before the first quote or colon: the part that quotes no value."""
    cut = re.split(r"[\"':]", text, maxsplit=1)[0]
    return " ".join(cut.split()) or "error"


def _probe(query: str, column: str | None, text_type: str) -> str:
    """A one-row query that fails when ``query`` does (``column`` None), or when computing
    ``column`` as text does."""
    if column is None:
        return f"SELECT count(*) FROM ({query}\n) AS q"
    return f"SELECT max(length(CAST(q.{_quote(column)} AS {text_type}))) FROM ({query}\n) AS q"


def _at_fault(wanted: list[str], fails: Callable[[str | None], bool]) -> str:
    """`` in column 'x'`` for the first wanted column whose computation fails alone, or ``""``
    when the query fails without its columns too (or none fails alone)."""
    from spotify_audience_sync.segment.sources import looks_like_data

    if fails(None):
        return ""
    for number, column in enumerate(wanted, 1):
        if fails(column):
            return f" in column {number}" if looks_like_data(column) else f" in column {column!r}"
    return ""


def _blamed(
    error: InputError, wanted: list[str], fails: Callable[[str | None], bool]
) -> InputError:
    where = _at_fault(wanted, fails)
    return InputError(f"{error}{where}") if where else error


def _as_strings(frame: pl.DataFrame, columns: list[str], name: str) -> pl.DataFrame:
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


def _slices(frame: pl.DataFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    for offset in range(0, frame.height, batch_rows):
        yield frame.slice(offset, batch_rows)


def _arrow_frames(
    reader: Any,
    columns: list[str],
    batch_rows: int,
    failed: Callable[[Exception], InputError],
    name: str,
) -> Iterator[pl.DataFrame]:
    """Arrow record batches → polars String frames of at most ``batch_rows`` rows."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as exc:  # any driver or Arrow error: translated, message filtered
            raise failed(exc) from None
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield from _slices(_as_strings(frame, columns, name), batch_rows)


# --- PostgreSQL (ADBC) ------------------------------------------------------------------------
def _pg_url(url: str) -> str:
    """Add a connect timeout unless the URL sets one: a dead host must not hang a schedule."""
    parts = urlsplit(url)
    if "connect_timeout" in dict(parse_qsl(parts.query)):
        return url
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}connect_timeout={CONNECT_TIMEOUT_SECONDS}"))


def _pg_connect_error(name: str, exc: Exception, scrub: Callable[[str], str]) -> InputError:
    text = scrub(str(exc)).split("\n", 1)[0]
    text = text.split("Failed to connect: ", 1)[-1]
    reason = text.rsplit(" failed: ", 1)[-1].replace("FATAL:", "").strip()
    lowered = reason.lower()
    if "connection refused" in lowered:
        what = "connection refused"
    elif "authentication" in lowered or "role" in lowered or "pg_hba.conf" in lowered:
        what = "authentication failed"
    elif "timeout" in lowered:
        what = "connection timed out"
    else:
        what = "cannot connect"
    return InputError(f"{name}: {what} ({' '.join(reason.split())})")


def _pg_sql_error(name: str, exc: Exception, scrub: Callable[[str], str]) -> InputError:
    """A failed statement: SQLSTATE and primary message only (DETAIL can hold row values)."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    details = dict(getattr(exc, "details", None) or [])
    primary = details.get(b"PG_DIAG_MESSAGE_PRIMARY", b"").decode("utf-8", "replace")
    if not primary:
        text = str(exc).split("\n", 1)[0]
        primary = text.split("ERROR:", 1)[-1]
    primary = scrub(primary).strip()
    if sqlstate[:2] not in _WORDS_ONLY_CLASSES:
        primary = _words(primary)
    state = f"SQLSTATE {sqlstate}: " if sqlstate else ""
    return InputError(f"{name}: the query failed ({state}{primary})")


def _pg_read_error(name: str, exc: Exception, scrub: Callable[[str], str]) -> InputError:
    """A failure while rows stream: no SQLSTATE to trust, so only the leading words."""
    text = scrub(str(exc)).split("\n", 1)[0]
    text = text.split("ERROR:", 1)[-1] if "ERROR:" in text else text
    return InputError(f"{name}: the query failed while rows were read ({_words(text)})")


def _open_postgres(
    query: str, url: str, name: str, batch_rows: int, scrub: Callable[[str], str]
) -> QuerySource:
    import adbc_driver_manager
    from adbc_driver_postgresql import dbapi  # type: ignore[import-untyped]

    error = adbc_driver_manager.Error
    try:
        conn = dbapi.connect(_pg_url(url))
    except error as exc:
        raise _pg_connect_error(name, exc, scrub) from None
    try:
        with conn.cursor() as cursor:
            columns = list(cursor.adbc_execute_schema(query).names)
    except error as exc:
        conn.close()
        raise _pg_sql_error(name, exc, scrub) from None

    def fails(column: str | None) -> bool:
        conn.rollback()  # the failed statement aborted the transaction
        try:
            with conn.cursor() as cursor:
                cursor.execute(_probe(query, column, "text"))
                cursor.fetchall()
        except error:
            conn.rollback()
            return True
        return False

    def batches(wanted: list[str]) -> Iterator[pl.DataFrame]:
        try:
            yield from read(wanted)
        except InputError as exc:
            raise _blamed(exc, wanted, fails) from None

    def read(wanted: list[str]) -> Iterator[pl.DataFrame]:
        cursor = conn.cursor()
        try:
            # ~batch_rows rows of identifiers per Arrow batch; _slices caps it exactly.
            hint = max(1 << 20, min(batch_rows * 64, 64 << 20))
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(hint)}
            )
            try:
                cursor.execute(_as_text(query, wanted, "text"))
                reader = cursor.fetch_record_batch()
            except error as exc:
                raise _pg_sql_error(name, exc, scrub) from None
            yield from _arrow_frames(
                reader, wanted, batch_rows, lambda exc: _pg_read_error(name, exc, scrub), name
            )
        finally:
            cursor.close()

    return QuerySource(name, "postgresql", columns, batches, conn.close)


# --- DuckDB -----------------------------------------------------------------------------------
def _duckdb_database(url: str) -> str:
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


def _duckdb_error(name: str, exc: Exception, scrub: Callable[[str], str], when: str) -> InputError:
    kind = type(exc).__name__
    text = scrub(str(exc)).split("\n", 1)[0]
    if kind not in _DUCKDB_SAFE:
        text = _words(text.split("Error: ", 1)[-1])
    return InputError(f"{name}: the query failed{when} ({' '.join(text.split())})")


def _open_duckdb(
    query: str, url: str, name: str, batch_rows: int, scrub: Callable[[str], str]
) -> QuerySource:
    import duckdb

    database = _duckdb_database(url)
    if database != ":memory:" and not Path(database).is_file():
        raise InputNotFoundError(f"{name}: no DuckDB file {database}")
    try:
        conn = duckdb.connect(database, read_only=database != ":memory:")
    except duckdb.Error as exc:
        raise _duckdb_error(name, exc, scrub, "") from None
    try:
        relation = conn.sql(query)  # binds the query and describes it; reads no row
        if relation is None:
            raise InputError(f"{name}: the statement returns no rows (expected a query)")
        columns = list(relation.columns)
    except duckdb.Error as exc:
        conn.close()
        raise _duckdb_error(name, exc, scrub, "") from None
    except BaseException:
        conn.close()
        raise

    def fails(column: str | None) -> bool:
        try:
            conn.sql(_probe(query, column, "VARCHAR")).fetchall()
        except duckdb.Error:
            return True
        return False

    def batches(wanted: list[str]) -> Iterator[pl.DataFrame]:
        try:
            yield from read(wanted)
        except InputError as exc:
            raise _blamed(exc, wanted, fails) from None

    def read(wanted: list[str]) -> Iterator[pl.DataFrame]:
        try:
            reader = conn.sql(_as_text(query, wanted, "VARCHAR")).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise _duckdb_error(name, exc, scrub, "") from None
        yield from _arrow_frames(
            reader,
            wanted,
            batch_rows,
            lambda exc: _duckdb_error(name, exc, scrub, " while rows were read"),
            name,
        )

    return QuerySource(name, "duckdb", columns, batches, conn.close)


# --- anything else connectorx reads (untested here) ------------------------------------------
def _open_connectorx(
    query: str, url: str, name: str, batch_rows: int, scrub: Callable[[str], str]
) -> QuerySource:
    try:
        import connectorx  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise InputError(
            f"{name}: reading {urlsplit(url).scheme}:// needs connectorx "
            "(pip install connectorx); PostgreSQL and DuckDB are built in"
        ) from None

    def failed(exc: Exception) -> InputError:
        return InputError(f"{name}: the query failed ({_words(scrub(str(exc)))})")

    try:
        reader = connectorx.read_sql(url, query, return_type="arrow_stream", batch_size=batch_rows)
        columns = list(reader.schema.names)
    except Exception as exc:  # connectorx raises bare RuntimeErrors
        raise failed(exc) from None

    def batches(wanted: list[str]) -> Iterator[pl.DataFrame]:
        yield from _arrow_frames(reader, wanted, batch_rows, failed, name)

    return QuerySource(name, "connectorx", columns, batches, lambda: None)
