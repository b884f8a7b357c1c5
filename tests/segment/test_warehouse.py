"""Warehouse sources against the real PostgreSQL on 127.0.0.1:5432 (database ``test``) and DuckDB.

A session table of 300,000 synthetic, deliberately messy people is made with generate_series
and dropped at the end. Assertions compare counts and sets, never print a raw identifier.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from click.testing import CliRunner

from conftest import PG_BASE, pg_execute, require_postgres, run_with_peak_rss
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import ConfigError, InputError, InputNotFoundError
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.segment.warehouse import open_input, open_query, redact_url

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "segment.csv"
PG_URL = PG_BASE
PEOPLE = 300_000
SECRET = "hunter2-Secret"  # a password that must never be printed

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


# --- the PostgreSQL table ---------------------------------------------------------------------
_execute = pg_execute


@pytest.fixture(scope="module")
def table() -> Iterator[str]:
    """A table of messy people, unique to this session; dropped at teardown."""
    require_postgres()  # the machine and CI have it: fail, never skip
    name = f"sas_people_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _execute(
        PG_URL,
        f"""
        CREATE TABLE {name} AS
        SELECT i AS id,
          CASE
            WHEN i % 101 = 0 THEN NULL
            WHEN i % 103 = 0 THEN ''
            WHEN i % 107 = 0 THEN 'no-at-sign-' || i
            WHEN i % 109 = 0 THEN 'person' || i || '@nodot'
            WHEN i % 5 = 0 THEN '  Person' || (i % 200000) || '@Example.COM '
            WHEN i % 7 = 0 THEN E'\\t' || upper('person' || (i % 200000) || '@example.com')
            ELSE 'person' || (i % 200000) || '@example.com'
          END AS email,
          CASE i % 8
            WHEN 0 THEN NULL
            WHEN 1 THEN '+1 (' || area || ') ' || exch || '-' || line
            WHEN 2 THEN area || '.' || exch || '.' || line
            WHEN 3 THEN '1-' || area || '-' || exch || '-' || line
            WHEN 4 THEN '+44 20 7946 ' || line
            WHEN 5 THEN '011 49 30 ' || (2000000 + j)
            WHEN 6 THEN 'call me maybe'
            ELSE '+1 ' || area || exch || line || ' ext. 12'
          END AS phone,
          i * 1.5 AS score
        FROM (
          SELECT i, i % 30000 AS j,
            (ARRAY['201','212','305','415','617','718','773','206','303','512'])[1 + i % 10]
              AS area,
            (200 + (i * 7) % 800)::text AS exch,
            lpad((i % 10000)::text, 4, '0') AS line
          FROM generate_series(1, {PEOPLE}) AS i
        ) AS g
        """,
    )
    yield name
    _execute(PG_URL, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture(scope="module")
def query(table: str) -> str:
    return f"SELECT id, email, phone, score FROM {table} WHERE id % 10 <> 3 ORDER BY id"


@pytest.fixture(scope="module")
def exported(query: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows exported by psql as CSV (independent of the code under test)."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    target = tmp_path_factory.mktemp("export") / "people.csv"
    with target.open("wb") as out:
        subprocess.run([psql, PG_URL, "--csv", "-c", query], stdout=out, check=True)
    return target


def expected_members(csv_path: Path) -> set[tuple[str, str]]:
    """What the audience must hold, computed with hashlib and phonenumbers row by row."""
    members: set[tuple[str, str]] = set()
    phones: dict[str, str | None] = {}
    with csv_path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            email = row["email"].strip().lower()
            if _EMAIL.fullmatch(email):
                members.add(("EMAIL_ID_SHA256", hashlib.sha256(email.encode()).hexdigest()))
            raw = row["phone"]
            if raw not in phones:
                phones[raw] = None
                try:
                    number = phonenumbers.parse(raw, "US")
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_valid_number(number):
                    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    phones[raw] = hashlib.sha256(e164.encode()).hexdigest()
            if phones[raw] is not None:
                members.add(("PHONE_NUMBER_SHA256", str(phones[raw])))
    return members


def prepare(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["prepare", *args])
    return result.exit_code, result.stderr


# --- PostgreSQL end to end --------------------------------------------------------------------
def test_a_query_prepares_to_the_same_bytes_as_its_csv_export(
    query: str, exported: Path, tmp_path: Path
) -> None:
    from_query, from_file = tmp_path / "query.csv", tmp_path / "file.csv"
    report = tmp_path / "report.json"
    code, stderr = prepare(
        "--query", query, "--database-url", PG_URL, "-o", str(from_query), "--report", str(report)
    )
    assert code == 0, stderr
    code, stderr = prepare(str(exported), "-o", str(from_file), "-q")
    assert code == 0, stderr
    assert from_query.stat().st_size > 1_000_000
    assert from_query.read_bytes() == from_file.read_bytes()
    data = json.loads(report.read_text())
    assert data["rows_read"] == PEOPLE - PEOPLE // 10
    assert data["format"] == "postgresql"
    assert data["input"] == f"query on {redact_url(PG_URL)}"


@pytest.fixture
def pg_env(env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox settings (conftest's ``env``) plus PostgreSQL as the database."""
    monkeypatch.setenv("SPOTIFY_ADS_DATABASE_URL", PG_URL)
    return env


def test_sync_of_a_query_makes_the_audience_hold_exactly_the_expected_hashes(
    pg_env: Sandbox, query: str, exported: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["sync", "--query", query, "--audience-name", "warehouse", "--report", str(report)]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["sync"]["action"] == "created"
    assert data["prepare"]["rows_read"] == PEOPLE - PEOPLE // 10

    members = pg_env.membership(data["sync"]["audience_id"])
    expected = expected_members(exported)
    assert len(members) == len(set(members))  # each identifier once
    received = set(members)
    assert len(expected) > 150_000
    assert len(received - expected) == 0
    assert len(expected - received) == 0
    assert data["sync"]["identifiers"] == len(expected)


def test_batches_are_bounded_and_the_query_describes_itself_first(query: str) -> None:
    with open_query(query, PG_URL, batch_rows=50_000) as source:
        assert source.columns == ["id", "email", "phone", "score"]
        heights = []
        for batch in source.batches(["email", "phone"]):
            assert batch.columns == ["email", "phone"]
            assert batch.dtypes == [pl.String, pl.String]
            heights.append(batch.height)
    assert max(heights) <= 50_000
    assert len(heights) > 1
    assert sum(heights) == PEOPLE - PEOPLE // 10


def test_numbers_arrive_as_the_database_writes_them(table: str) -> None:
    sql = f"SELECT id, score, '0044 20 7946 0000'::text AS phone FROM {table} WHERE id = 2"
    with open_query(sql, PG_URL) as source:
        rows = pl.concat(list(source.batches(["id", "score", "phone"]))).rows()
    assert rows == [("2", "3.0", "0044 20 7946 0000")]


_STREAM = """
import sys
from spotify_audience_sync.segment.warehouse import open_query
rows = 0
with open_query(sys.argv[1], sys.argv[2], batch_rows=20_000) as source:
    for batch in source.batches(["email", "phone"]):
        rows += batch.height
print(rows)
"""


def _peak_rss_mb(sql: str, peak_file: Path) -> tuple[int, float]:
    done, peak = run_with_peak_rss(
        [sys.executable, "-c", _STREAM, sql, PG_URL],
        peak_file,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(done.stdout), peak


def test_memory_stays_flat_when_the_result_grows_eightfold(table: str, tmp_path: Path) -> None:
    small_rows, small_peak = _peak_rss_mb(f"SELECT email, phone FROM {table}", tmp_path / "a")
    big_rows, big_peak = _peak_rss_mb(
        f"SELECT email, phone FROM {table} CROSS JOIN generate_series(1, 8)", tmp_path / "b"
    )
    assert (small_rows, big_rows) == (PEOPLE, 8 * PEOPLE)
    # 2.1 million more rows of text held at once would be well over 100 MB.
    assert big_peak - small_peak < 40, (small_peak, big_peak)


# --- errors -----------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _error(sql: str, url: str, columns: tuple[str, ...] = ("email",)) -> InputError:
    with pytest.raises(InputError) as caught, open_query(sql, url) as source:
        for _ in source.batches(list(columns)):
            pass
    return caught.value


def test_refused_connection_names_it_without_the_password() -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{_closed_port()}/test"
    message = str(_error("SELECT 1 AS email", url))
    assert "connection refused" in message
    assert f"postgresql://postgres:***@127.0.0.1:{url.split(':')[-1]}" in message
    assert SECRET not in message


def test_unknown_role_is_an_authentication_failure(table: str) -> None:
    host = PG_URL.split("@", 1)[1]
    message = str(_error("SELECT 1 AS email", f"postgresql://nobody_here:{SECRET}@{host}"))
    assert "authentication failed" in message
    assert SECRET not in message


def test_bad_sql_gives_the_database_message_and_sqlstate(table: str) -> None:
    message = str(_error(f"SELEC email FROM {table}", PG_URL))
    assert "syntax error" in message
    assert "SQLSTATE 42601" in message


def test_a_failure_while_rows_stream_never_quotes_a_value(table: str) -> None:
    url = PG_URL.replace("postgres@", f"postgres:{SECRET}@")
    message = str(_error(f"SELECT email::int AS email FROM {table} WHERE id % 101 <> 0", url))
    assert "invalid input syntax for type integer" in message
    assert message.endswith(") in column 'email'")  # the column whose cast failed
    assert "@" not in message.split("***@", 1)[1]  # no email after the redacted URL
    assert SECRET not in message


def test_a_failure_outside_the_columns_names_none(table: str) -> None:
    message = str(_error(f"SELECT email FROM {table} WHERE (email || 'x')::int > 0", PG_URL))
    assert "invalid input syntax for type integer" in message
    assert "in column" not in message


def test_missing_column_exits_65_naming_the_redacted_url(table: str) -> None:
    url = PG_URL.replace("postgres@", f"postgres:{SECRET}@")
    code, stderr = prepare(
        "--query",
        f"SELECT id FROM {table}",
        "--database-url",
        url,
        "--email-column",
        "mail",
        "-o",
        "-",
    )
    assert code == 65
    assert f"query on {redact_url(url)}: no column 'mail'" in stderr
    assert ":***@" in stderr
    assert SECRET not in stderr


def test_an_empty_result_is_no_data_rows(table: str, tmp_path: Path) -> None:
    code, stderr = prepare(
        "--query", f"SELECT email FROM {table} WHERE false", "--database-url", PG_URL, "-o", "-"
    )
    assert code == 65
    assert "no data rows" in stderr


def test_duplicate_column_names_are_refused(table: str) -> None:
    assert "more than one column named 'email'" in str(
        _error(f"SELECT email, email FROM {table}", PG_URL)
    )


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(f"ftp://me:{SECRET}@host/x", "unknown database URL scheme (ftp://)", id="ftp"),
        pytest.param(f"host=db password={SECRET}", "without a scheme", id="libpq-keywords"),
        pytest.param(
            f"mssql://me:{SECRET}@127.0.0.1/x", "unknown database URL scheme (mssql://)", id="mssql"
        ),
    ],
)
def test_urls_we_cannot_read(url: str, needle: str) -> None:
    message = str(_error("SELECT 1 AS email", url))
    assert needle in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u@h/db?sslmode=require", "postgres://u@h/db?sslmode=require"),
        ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=***"),
        ("duckdb://", "duckdb://"),
        ("duckdb:///data/x.db", "duckdb:///data/x.db"),
        ("host=h password=pw", "<database URL without a scheme>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_exactly_one_of_input_or_query(tmp_path: Path) -> None:
    code, stderr = prepare("-o", "-")
    assert code == 2
    assert "exactly one of INPUT or --query" in stderr
    code, stderr = prepare(str(FIXTURE), "--query", "SELECT 1", "-o", "-")
    assert code == 2
    result = CliRunner().invoke(main, ["sync", "--audience-name", "x"])
    assert result.exit_code == 2


def test_a_query_needs_a_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPOTIFY_ADS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, stderr = prepare("--query", "SELECT 1", "-o", "-")
    assert code == 78
    assert "SPOTIFY_ADS_DATABASE_URL" in stderr
    with pytest.raises(ConfigError):
        open_input(None, "auto", "SELECT 1", None)


# --- DuckDB -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def from_fixture(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The fixture prepared as a file: what every DuckDB route must reproduce."""
    out = tmp_path_factory.mktemp("duck") / "fixture.csv"
    code, stderr = prepare(str(FIXTURE), "-o", str(out), "-q")
    assert code == 0, stderr
    return out.read_bytes()


def test_a_duckdb_file(tmp_path: Path, from_fixture: bytes) -> None:
    import duckdb

    database = tmp_path / "segment.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute(
            f"CREATE TABLE people AS SELECT * FROM read_csv('{FIXTURE}', all_varchar=true)"
        )
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    url = f"duckdb:///{database}"
    args = ["--query", "SELECT * FROM people", "--database-url", url, "-o", str(out)]
    code, stderr = prepare(*args, "--report", str(report))
    assert code == 0, stderr
    assert out.read_bytes() == from_fixture
    assert json.loads(report.read_text())["format"] == "duckdb"


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_duckdb_over_a_glob_of_files(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_fixture: bytes
) -> None:
    frame = pl.read_csv(FIXTURE, infer_schema=False)
    parts = tmp_path / "exports"
    parts.mkdir()
    for n, offset in enumerate(range(0, frame.height, 1000)):
        piece = frame.slice(offset, 1000)
        if kind == "parquet":
            piece.write_parquet(parts / f"part-{n}.parquet")
        else:
            piece.write_csv(parts / f"part-{n}.csv")
    monkeypatch.chdir(tmp_path)  # the glob is relative, as a user would write it
    reader = (
        "read_parquet('exports/*.parquet')"
        if kind == "parquet"
        else "read_csv('exports/*.csv', all_varchar=true)"
    )
    code, stderr = prepare(
        "--query", f"SELECT * FROM {reader}", "--database-url", "duckdb://", "-o", "out.csv", "-q"
    )
    assert code == 0, stderr
    assert (tmp_path / "out.csv").read_bytes() == from_fixture


def test_duckdb_batches_are_bounded() -> None:
    sql = "SELECT 'person' || i || '@example.com' AS email FROM range(300000) AS t(i)"
    with open_query(sql, "duckdb:///:memory:", batch_rows=40_000) as source:
        heights = [batch.height for batch in source.batches(["email"])]
    assert max(heights) <= 40_000
    assert len(heights) > 1
    assert sum(heights) == 300_000


def test_duckdb_errors(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="no DuckDB file"):
        open_query("SELECT 1", f"duckdb:///{tmp_path / 'missing.duckdb'}")
    assert "Binder Error" in str(_error("SELECT nope FROM range(3)", "duckdb://"))
    conversion = str(_error("SELECT 'a.person@example.com'::INT AS email", "duckdb://"))
    assert "@" not in conversion.removeprefix("query on duckdb://")


def test_duckdb_names_the_column_whose_cast_failed() -> None:
    query = (
        "SELECT 'a.person@example.com' AS email, "
        "(CASE WHEN i > 5 THEN 'a.person@example.com' ELSE '1' END)::INT AS phone "
        "FROM range(9) t(i)"
    )
    with open_query(query, "duckdb://") as source, pytest.raises(InputError) as info:
        for _ in source.batches(["email", "phone"]):
            pass
    assert str(info.value) == (
        "query on duckdb://: the query failed (Could not convert string) in column 'phone'"
    )
