"""The PostgreSQL state backend, against the real database: state, migrations, locks, history."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PG_PASSWORD, STATE_ACCOUNT, pg_query, sync_state
from spotify_audience_sync.errors import ConfigError, SafetyError, TransientError
from spotify_audience_sync.sync.backend import RunRecord, StatusUpdate, open_state
from spotify_audience_sync.sync.postgres import SCHEMA_VERSION, PostgresState

ACCOUNT = STATE_ACCOUNT


state = sync_state


def run(run_id: str, **changes: object) -> RunRecord:
    base: dict[str, object] = {
        "run_id": run_id,
        "started_at": "2026-11-22T10:00:00Z",
        "finished_at": "2026-11-22T10:01:00Z",
        "ad_account_id": ACCOUNT,
        "audience_id": "a1",
        "audience_name": "n",
        "action": "created",
        "identifiers": 1234,
        "exit_code": 0,
        "seconds": 60.0,
    }
    base.update(changes)
    return RunRecord(**base)  # type: ignore[arg-type]


def schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def test_open_state_picks_the_backend_by_url_scheme(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_state(pg_url) as backend:
        assert isinstance(backend, PostgresState)
    with open_state(str(tmp_path)) as files:
        assert files.describe() == str(tmp_path)
    with pytest.raises(ConfigError, match="scheme 'mysql' is not supported"):
        open_state("mysql://h/db").__enter__()


def test_state_round_trips_and_is_found_by_name(pg_url: str) -> None:
    with open_state(pg_url) as backend:
        assert backend.load(ACCOUNT, "a1") is None
        backend.save(state())
        assert backend.load(ACCOUNT, "a1") == state()
        backend.save(state(identifiers=2000, synced_at="2026-11-23T10:00:00Z"))
        backend.save(state(audience_id="a2", synced_at="2026-11-24T10:00:00Z"))
        assert [s.audience_id for s in backend.find_by_name(ACCOUNT, "n")] == ["a2", "a1"]
        loaded = backend.load(ACCOUNT, "a1")
        assert loaded is not None
        assert loaded.identifiers == 2000
    with open_state(pg_url) as again:  # another machine sees the same state
        assert again.load(ACCOUNT, "a2") is not None


def test_the_tool_creates_its_tables_and_records_the_schema_version(pg_url: str) -> None:
    with open_state(pg_url):
        pass
    with open_state(pg_url):  # a second open migrates nothing twice
        pass
    rows = pg_query(f'SELECT version FROM "{schema(pg_url)}".schema_version ORDER BY version')
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    tables = pg_query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        schema(pg_url),
    )
    assert [t for (t,) in tables] == ["audience_state", "runs", "schema_version", "tokens"]


def test_a_newer_schema_is_refused_clearly(pg_url: str) -> None:
    with open_state(pg_url):
        pass
    pg_query(f'INSERT INTO "{schema(pg_url)}".schema_version (version) VALUES (99)')
    with pytest.raises(ConfigError) as caught:
        PostgresState(pg_url)
    message = str(caught.value)
    known = f"({SCHEMA_VERSION}); upgrade spotify-audience-sync"
    assert f"version 99, newer than this tool knows {known}" in message
    assert PG_PASSWORD not in message


def test_first_runs_on_many_machines_migrate_once(pg_url: str) -> None:
    """Concurrent first opens serialize on an advisory lock instead of racing on CREATE."""
    code = (
        "import sys; from spotify_audience_sync.sync.postgres import PostgresState; "
        "PostgresState(sys.argv[1]).close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    count = pg_query(f'SELECT count(*) FROM "{schema(pg_url)}".schema_version')
    assert count == [(SCHEMA_VERSION,)]  # each migration once


def test_lock_refuses_a_second_run_and_is_released_after(pg_url: str) -> None:
    with open_state(pg_url) as one, open_state(pg_url) as two:
        with one.lock(ACCOUNT, "n"):
            with one.lock(ACCOUNT, "n"):  # the same run, by name then by id: no self-deadlock
                pass
            with pytest.raises(SafetyError, match="another sync of this audience is running"):
                two.lock(ACCOUNT, "n").__enter__()
            with two.lock(ACCOUNT, "other audience"):  # other audiences run in parallel
                pass
        with two.lock(ACCOUNT, "n"):
            pass


def test_a_run_that_dies_releases_its_lock_with_its_connection(pg_url: str) -> None:
    code = (
        "import sys, time; from spotify_audience_sync.sync.postgres import PostgresState\n"
        "b = PostgresState(sys.argv[1])\n"
        "with b.lock(sys.argv[2], 'n'):\n"
        "    print('locked', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, pg_url, ACCOUNT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with open_state(pg_url) as other:
            with pytest.raises(SafetyError):
                other.lock(ACCOUNT, "n").__enter__()
            os.kill(holder.pid, signal.SIGKILL)  # no cleanup, no unlock: only the connection dies
            holder.wait(timeout=10)
            deadline = time.monotonic() + 20
            while True:
                try:
                    with other.lock(ACCOUNT, "n"):
                        break
                except SafetyError:
                    assert time.monotonic() < deadline, "the dead run's lock was never released"
                    time.sleep(0.2)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_history_lists_runs_newest_first_and_status_lands_on_the_last_upload(
    pg_url: str,
) -> None:
    with open_state(pg_url) as backend:
        backend.save(state(status="PROCESSING"))
        backend.record_run(run("r1", status="PROCESSING"))
        backend.record_run(run("r2", started_at="2026-11-23T10:00:00Z", action="skipped"))
        backend.record_run(run("r3", started_at="2026-11-24T10:00:00Z", audience_id="a2"))
        assert [r.run_id for r in backend.history(ACCOUNT)] == ["r3", "r2", "r1"]
        assert [r.run_id for r in backend.history(ACCOUNT, "a1", limit=1)] == ["r2"]
        assert [r.run_id for r in backend.history(ACCOUNT, "n")] == ["r3", "r2", "r1"]
        update = StatusUpdate(ACCOUNT, "a1", "BOOKABLE", 900, 1100, "2026-11-25T10:00:00Z")
        assert backend.record_status(update) == "r1"  # the last upload, not the skip
        (first,) = [r for r in backend.history(ACCOUNT) if r.run_id == "r1"]
        assert (first.status, first.size_min, first.size_max) == ("BOOKABLE", 900, 1100)
        assert first.status_checked_at == "2026-11-25T10:00:00Z"
        loaded = backend.load(ACCOUNT, "a1")
        assert loaded is not None
        assert loaded.status == "BOOKABLE"


def test_an_unreachable_database_is_transient_and_never_shows_the_password() -> None:
    url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:1/test"
    with pytest.raises(TransientError) as caught:
        PostgresState(url)
    assert "postgresql://postgres:***@127.0.0.1:1/test" in str(caught.value)
    assert PG_PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:notaport/test", "port", id="port"
        ),
        pytest.param(
            f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1/test?sslmode=bogus",
            "sslmode",
            id="sslmode",
        ),
        pytest.param(
            f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1/test"
            "?options=-c%20statement_timeout%3Dbogus",
            "statement_timeout",
            id="options",
        ),
        pytest.param(f"postgres://postgres:{PG_PASSWORD}@[::1/test", "malformed", id="ipv6"),
        pytest.param(
            f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1/test?bogus=1", "bogus", id="parameter"
        ),
    ],
)
def test_a_state_url_that_can_never_work_is_a_config_error_not_transient(
    url: str, reason: str
) -> None:
    """A typo reported as exit 75 would have a scheduler retry it forever."""
    with pytest.raises(ConfigError) as caught:
        PostgresState(url)
    assert caught.value.exit_code == 78
    assert reason in str(caught.value)
    assert PG_PASSWORD not in str(caught.value)
