"""The state dir's run history: a JSONL file beside the states, 0600, torn lines skipped."""

from __future__ import annotations

import stat
from pathlib import Path

from spotify_audience_sync.sync.backend import RunRecord, StatusUpdate
from spotify_audience_sync.sync.state import StateStore, SyncState

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


def run(run_id: str, started: str, action: str = "created", audience: str = "a1") -> RunRecord:
    return RunRecord(run_id, started, started, ACCOUNT, audience, "n", action, exit_code=0)


def test_history_is_newest_first_and_status_lands_on_the_last_upload(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(SyncState(ACCOUNT, "a1", "n", "2026-11-22T10:00:00Z", 1234, status="PROCESSING"))
    store.record_run(run("r1", "2026-11-22T10:00:00Z"))
    store.record_run(run("r2", "2026-11-23T10:00:00Z", action="skipped"))
    store.record_run(run("r3", "2026-11-24T10:00:00Z", audience="a2"))
    path = tmp_path / ACCOUNT / "history.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.run_id for r in store.history(ACCOUNT)] == ["r3", "r2", "r1"]
    assert [r.run_id for r in store.history(ACCOUNT, "a1", limit=1)] == ["r2"]
    update = StatusUpdate(ACCOUNT, "a1", "BOOKABLE", 900, 1100, "2026-11-25T10:00:00Z")
    assert store.record_status(update) == "r1"
    (first,) = [r for r in store.history(ACCOUNT) if r.run_id == "r1"]
    assert (first.status, first.size_min, first.size_max) == ("BOOKABLE", 900, 1100)
    state = store.load(ACCOUNT, "a1")
    assert state is not None
    assert state.status == "BOOKABLE"


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.record_run(run("r1", "2026-11-22T10:00:00Z"))
    with (tmp_path / ACCOUNT / "history.jsonl").open("a") as handle:
        handle.write('{"kind":"run","run_id":"r2"')  # a crash mid-write
    assert [r.run_id for r in store.history(ACCOUNT)] == ["r1"]
