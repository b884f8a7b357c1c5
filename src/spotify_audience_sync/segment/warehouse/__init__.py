"""Warehouse sources: a SQL query's result, streamed in bounded batches, read like a file.

=============================  ===========================================================
URL                            read through (module; extra)
=============================  ===========================================================
``postgresql://``,             psycopg 3, a server-side cursor (``postgres``; core)
``postgres://``
``mysql://``, ``mariadb://``   PyMySQL, an unbuffered cursor (``mysql``; ``[mysql]``)
``duckdb://``,                 embedded DuckDB in memory, for ``read_parquet('x/*.parquet')``
``duckdb:///:memory:``         in the query (``duckdb``; ``[duckdb]``)
``duckdb:///rel/path.db``,     embedded DuckDB on a file, opened read-only
``duckdb:////abs/path.db``
=============================  ===========================================================

One module per driver implements :class:`~.base.Connection`; :class:`~.base.QuerySource` does
the rest once. Column names come from the query's description before any row is read, so a
missing column fails at once. Only the wanted columns are read, each cast to text by the
database itself.

Errors are named ``query on <url>`` with the password masked. Where a failure while rows
stream is a column's, the query is run again on the failure path only (once without its
columns, once per wanted column) and the column whose run fails is named.
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from pydantic import SecretStr

from spotify_audience_sync.errors import ConfigError, InputError
from spotify_audience_sync.redact import redact_url, scrubber
from spotify_audience_sync.segment.warehouse.base import Connection, QuerySource

if TYPE_CHECKING:
    from spotify_audience_sync.segment.sources import Format, Source

__all__ = ["DEFAULT_BATCH_ROWS", "DRIVERS", "QuerySource", "open_input", "open_query", "redact_url"]

DEFAULT_BATCH_ROWS = 100_000

#: scheme -> (driver module, the extra that installs its driver, or None when it is core).
DRIVERS: dict[str, tuple[str, str | None]] = {
    "postgresql": ("postgres", None),
    "postgres": ("postgres", None),
    "mysql": ("mysql", "mysql"),
    "mariadb": ("mysql", "mysql"),
    "duckdb": ("duckdb", "duckdb"),
}


def _connect(url: str, name: str) -> Connection:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in DRIVERS:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        known = ", ".join(f"{s}://" for s in DRIVERS)
        raise InputError(f"{name}: unknown database URL scheme ({shown}); use {known}")
    module_name, extra = DRIVERS[scheme]
    module = importlib.import_module(f"spotify_audience_sync.segment.warehouse.{module_name}")
    try:
        return cast("Connection", module.connect(url, name, scrubber(url)))
    except ModuleNotFoundError as exc:
        if extra is None:
            raise
        raise ConfigError(
            f"{name}: reading {scheme}:// needs the {extra} extra ({exc.name} is not installed): "
            f"pip install 'spotify-audience-sync[{extra}]'"
        ) from None


def open_query(
    query: str, database_url: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> QuerySource:
    """Connect, describe ``query`` (no row is read yet), and return it as a source."""
    name = f"query on {redact_url(database_url)}"
    query = query.strip().rstrip(";").strip()
    if not query:
        raise InputError(f"{name}: the query is empty")
    conn = _connect(database_url, name)
    source = QuerySource(name, query, conn, batch_rows)
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
    """The segment: a file (or ``-``, or a URL), or a query on ``database_url``; exactly one.

    ``encoding`` applies to text files (see :func:`..sources.open_source`); a query's rows
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
