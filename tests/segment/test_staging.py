"""The stage's files stay private for their whole life, and a dead run's stage is cleaned up."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from spotify_audience_sync.segment import staging
from spotify_audience_sync.segment.staging import Stage, remove_stale


def _records(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(ord("a"), ord("f"), size=(n, 64), dtype=np.uint8)


def test_deduplicated_files_stay_0600(tmp_path: Path) -> None:
    with Stage(64, tmp_path) as stage:
        records = _records(100)
        stage.write(0, {0: np.concatenate([records, records])})
        for _ in stage.deduplicated(lambda parts: parts, keep=True):
            pass
        files = list(stage.directory.iterdir())
        assert files
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_a_dead_runs_stage_is_removed_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = tmp_path / "spotify-audience-sync-999999-abcd"
    dead.mkdir()
    (dead / "00-0").write_bytes(b"0" * 64)
    other = tmp_path / "someone-elses-dir"
    other.mkdir()
    later = time.time() + 120  # past the minute a just-made stage is given to lock itself
    monkeypatch.setattr(staging.time, "time", lambda: later)
    with Stage(64, tmp_path) as stage:
        assert not dead.exists()
        assert other.exists()
        assert stage.directory.exists()


def test_a_live_stage_is_never_taken_for_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = time.time() + 120
    monkeypatch.setattr(staging.time, "time", lambda: later)
    with Stage(64, tmp_path) as first:
        assert remove_stale(tmp_path) == []
        with Stage(64, tmp_path):
            assert first.directory.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_just_made_directory_is_left_alone(tmp_path: Path) -> None:
    fresh = tmp_path / f"spotify-audience-sync-{os.getpid()}-new"
    fresh.mkdir()
    assert remove_stale(tmp_path) == []
    assert fresh.exists()
