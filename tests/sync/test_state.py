"""Sync state: atomic, private, counts only; one run per audience; no stale lock after a crash."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import STATE_ACCOUNT, sync_state
from spotify_audience_sync.errors import ConfigError, SafetyError
from spotify_audience_sync.sync.state import StateStore

ACCOUNT = STATE_ACCOUNT


state = sync_state


def test_save_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    path = store.save(state())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.load(ACCOUNT, "a1") == state()
    assert store.load(ACCOUNT, "other") is None


def test_save_replaces_atomically_and_leaves_no_partial_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(state(identifiers=1))
    store.save(state(identifiers=2))
    loaded = store.load(ACCOUNT, "a1")
    assert loaded is not None
    assert loaded.identifiers == 2
    assert [p.name for p in (tmp_path / ACCOUNT).iterdir() if "partial" in p.name] == []


def test_unreadable_state_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path(ACCOUNT, "a1").write_text("{not json")
    with pytest.raises(ConfigError, match=r"a1\.json is unreadable"):
        store.load(ACCOUNT, "a1")


def test_unknown_fields_from_a_newer_version_are_ignored(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path(ACCOUNT, "a1").write_text(
        '{"ad_account_id": "x", "audience_id": "a1", "audience_name": "n", '
        '"synced_at": "t", "identifiers": 5, "added_later": true}'
    )
    loaded = store.load(ACCOUNT, "a1")
    assert loaded is not None
    assert loaded.identifiers == 5


def test_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with store.lock(ACCOUNT, "my audience"):
        with (
            pytest.raises(SafetyError, match=f"pid {os.getpid()}"),
            store.lock(ACCOUNT, "my audience"),
        ):
            pass
        with store.lock(ACCOUNT, "another audience"):
            pass
    with store.lock(ACCOUNT, "my audience"):
        pass


def test_a_crashed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from spotify_audience_sync.sync.state import StateStore\n"
        f"with StateStore({str(tmp_path)!r}).lock({ACCOUNT!r}, 'a'):\n"
        "    os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    with StateStore(tmp_path).lock(ACCOUNT, "a"):
        pass


def test_unusable_state_dir_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_STATE_DIR"):
        StateStore(blocker / "state").path(ACCOUNT, "a1")


@pytest.mark.parametrize("bad", ["../../../../x/escaped", "..", "a/b", ".hidden", ""])
def test_no_state_path_is_built_from_an_id_that_could_escape(tmp_path: Path, bad: str) -> None:
    from spotify_audience_sync.errors import ConfigError
    from spotify_audience_sync.sync.state import StateStore

    store = StateStore(tmp_path / "state")
    with pytest.raises(ConfigError, match="not a plain id"):
        store.path("3f1d8c2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f", bad)
    with pytest.raises(ConfigError, match="not a plain id"):
        store.path(bad, "3f1d8c2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
