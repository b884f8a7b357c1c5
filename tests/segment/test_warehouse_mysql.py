"""MySQL / MariaDB as a warehouse, against the real MariaDB on 127.0.0.1:3306 (root, no password).

A database of this session's own (created here, dropped at the end) holds a table of 50,000
synthetic people. Assertions compare counts and sets; no raw identifier is printed.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator

import polars as pl
import pytest

from spotify_audience_sync.errors import ConfigError, InputError, TransientError
from spotify_audience_sync.segment.warehouse import open_query
from spotify_audience_sync.segment.warehouse.mysql import connect_args

HOST = os.environ.get("SAS_TEST_MYSQL_HOST", "127.0.0.1:3306")
PEOPLE = 50_000
SECRET = "hunter2-Secret"


def _run(database: str | None, *statements: str) -> None:
    import pymysql

    host, port = HOST.split(":")
    conn = pymysql.connect(host=host, port=int(port), user="root", database=database)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """``mysql://root@host/<a database of this session>`` with a table ``people``."""
    database = f"sas_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _run(None, f"CREATE DATABASE {database}")
    try:
        _run(
            database,
            "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100), phone VARCHAR(40),"
            " score DOUBLE)",
            "INSERT INTO people SELECT seq, CASE WHEN seq % 101 = 0 THEN NULL"
            " ELSE CONCAT('person', seq, '@example.com') END,"
            " CONCAT('0044 20 7946 ', LPAD(seq % 10000, 4, '0')), seq * 1.5"
            f" FROM seq_1_to_{PEOPLE}",
        )
        yield f"mysql://root@{HOST}/{database}"
    finally:
        _run(None, f"DROP DATABASE {database}")


def _read(sql: str, url: str, columns: list[str], batch_rows: int = 100_000) -> pl.DataFrame:
    with open_query(sql, url, batch_rows=batch_rows) as source:
        return pl.concat(list(source.batches(columns)))


def test_rows_stream_in_bounded_batches_as_the_server_writes_them(url: str) -> None:
    with open_query("SELECT id, email, phone, score FROM people", url, batch_rows=7_000) as source:
        assert source.columns == ["id", "email", "phone", "score"]
        assert source.format == "mysql"
        heights = []
        for batch in source.batches(["email", "phone"]):
            assert batch.dtypes == [pl.String, pl.String]
            heights.append(batch.height)
    assert max(heights) <= 7_000
    assert sum(heights) == PEOPLE
    row = _read("SELECT id, phone, score FROM people WHERE id = 2", url, ["id", "phone", "score"])
    assert row.rows() == [("2", "0044 20 7946 0002", "3")]


def test_mariadb_scheme_and_nulls(url: str) -> None:
    frame = _read("SELECT email FROM people", url.replace("mysql://", "mariadb://"), ["email"])
    assert frame.height == PEOPLE
    assert frame["email"].null_count() == PEOPLE // 101


def _error(sql: str, url: str, columns: tuple[str, ...] = ("email",)) -> Exception:
    with pytest.raises((InputError, ConfigError, TransientError)) as caught:
        _read(sql, url, list(columns))
    return caught.value


def test_bad_sql_is_an_input_error_with_the_server_message(url: str) -> None:
    error = _error("SELEC email FROM people", url)
    assert type(error) is InputError
    assert error.exit_code == 65
    assert "error 1064" in str(error)
    assert "SQL syntax" in str(error)
    unknown = _error("SELECT nope AS email FROM people", url)
    assert "error 1054" in str(unknown)
    assert "Unknown column 'nope'" in str(unknown)


def test_a_refused_connection_is_transient_and_hides_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _error("SELECT 1 AS email", f"mysql://root:{SECRET}@127.0.0.1:{port}/test")
    assert type(error) is TransientError
    assert error.exit_code == 75
    assert f"query on mysql://root:***@127.0.0.1:{port}/test: cannot reach the server" in str(error)
    assert SECRET not in str(error)


def test_a_wrong_password_is_a_config_error_without_the_password(url: str) -> None:
    host = url.split("@", 1)[1]
    error = _error("SELECT 1 AS email", f"mysql://nobody_here:{SECRET}@{host}")
    assert type(error) is ConfigError
    assert error.exit_code == 78
    assert "access denied (error 1045" in str(error)
    assert SECRET not in str(error)


def test_unknown_url_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown URL parameter sslmode"):
        connect_args("mysql://root@h/db?sslmode=require", "query on x")
    args = connect_args(f"mysql://me:{SECRET.replace('-', '%2D')}@db.internal:3307/shop", "q")
    assert (args["host"], args["port"], args["user"], args["database"]) == (
        "db.internal",
        3307,
        "me",
        "shop",
    )
    assert args["password"] == SECRET


def test_the_columns_are_known_before_any_row_is_read(url: str) -> None:
    with open_query("SELECT id FROM people", url) as source:
        assert "email" not in source.columns


@pytest.mark.parametrize(
    ("scheme", "module", "extra"), [("mysql", "pymysql", "mysql"), ("duckdb", "duckdb", "duckdb")]
)
def test_a_missing_extra_names_the_pip_command(
    scheme: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError) as caught:
        open_query("SELECT 1 AS email", f"{scheme}://me:{SECRET}@127.0.0.1/x")
    assert str(caught.value) == (
        f"query on {scheme}://me:***@127.0.0.1/x: reading {scheme}:// needs the {extra} extra "
        f"({module} is not installed): pip install 'spotify-audience-sync[{extra}]'"
    )
