"""The stage's files stay private for their whole life, and a dead run's stage is cleaned up."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from spotify_audience_sync.segment import staging
from spotify_audience_sync.segment.encode import first_byte
from spotify_audience_sync.segment.staging import Stage, partition_payload, remove_stale


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


def _hex(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` records of 64 hex characters (what a staged digest is), all in one partition."""
    records = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[rng.integers(0, 16, (n, 64))]
    records[:, 0] = ord("0")
    return records


def test_duplicates_are_compacted_while_staging_and_the_output_does_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5M identical rows made one 165 MB partition and a 3 GB deduplication: a partition past
    COMPACT_BYTES is deduplicated in place, so it never holds more than the threshold."""
    monkeypatch.setattr(staging, "COMPACT_BYTES", 64 * 100)
    rng = np.random.default_rng(3)
    distinct = _hex(rng, 5)
    batches = [distinct[rng.integers(0, 5, size=50)] for _ in range(40)]
    outputs, sizes = [], []
    for compact in (True, False):
        if not compact:
            monkeypatch.setattr(staging, "COMPACT_BYTES", 1 << 40)
        with Stage(64, tmp_path) as stage:
            for batch in batches:
                stage.write(0, {1: batch})
                sizes.append(max(p.stat().st_size for p in stage.directory.iterdir()))
            compactions = stage.compactions
            outputs.append(b"".join(bytes(parts[0].data) for parts in stage.deduplicated(dict)))
        if compact:
            assert compactions > 0
            assert max(sizes) <= 64 * 100 + 64 * 50, "a partition outgrew the threshold"
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 5 * 64


def test_distinct_records_are_not_compacted_over_and_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "COMPACT_BYTES", 64 * 100)
    rng = np.random.default_rng(4)
    with Stage(64, tmp_path) as stage:
        for _ in range(64):
            stage.write(0, {1: _hex(rng, 50)})
        assert stage.compactions <= 6  # thresholds double: log2(64 * 50 / 100) + 1


def _hex_records(values: list[str]) -> np.ndarray:
    import hashlib

    text = "".join(hashlib.sha256(v.encode()).hexdigest() for v in values).encode()
    return np.frombuffer(text, dtype=np.uint8).reshape(-1, 64).copy()


def _staged_digest(tmp_path: Path, batches: list[tuple[int, list[str]]]) -> str:
    """The multiset digest of records staged batch by batch (group, values)."""
    with Stage(64, tmp_path) as stage:
        for group, values in batches:
            records = _hex_records(values)
            stage.write(group, partition_payload(records, first_byte(records[:, :2])))
        return stage.multiset_digest()


def test_the_multiset_digest_ignores_order_but_sees_every_record(tmp_path: Path) -> None:
    people = [f"user{i}@example.com" for i in range(5000)]
    digest = _staged_digest(tmp_path, [(0, people)])
    # Another order, other batch cuts: the same multiset, the same digest.
    shuffled = people[::-1]
    assert _staged_digest(tmp_path, [(0, shuffled[:1234]), (0, shuffled[1234:])]) == digest
    # One record fewer, one more, one duplicated, one in another group: all differ.
    assert _staged_digest(tmp_path, [(0, people[1:])]) != digest
    assert _staged_digest(tmp_path, [(0, [*people, "x@example.com"])]) != digest
    assert _staged_digest(tmp_path, [(0, [*people, people[0]])]) != digest
    assert _staged_digest(tmp_path, [(0, people[1:]), (1, people[:1])]) != digest
