"""The token file as ssh treats a key (#26.3): private directories whatever the umask, and a
file or directory others could read or replace tightened (ours) or refused (someone else's)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.spotify.auth import TokenSet, TokenStore

TOKENS = TokenSet("BQ-a", "AQ-r", 2_000_000_000.0, 1_900_000_000.0)
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_parent_directories_are_created_0700_under_umask_000(tmp_path: Path, umask_000) -> None:
    store = TokenStore(tmp_path / "a" / "b" / "tokens.json")
    store.save(TOKENS)
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700
    assert mode(store.path) == 0o600


def test_an_open_directory_of_ours_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "conf"
    directory.mkdir()
    directory.chmod(0o777)
    with caplog.at_level(logging.WARNING):
        TokenStore(directory / "tokens.json").save(TOKENS)
    assert mode(directory) == 0o700
    assert f"token directory {directory} was writable by others" in caplog.text


def test_a_readable_token_file_of_ours_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore(tmp_path / "conf" / "tokens.json")
    store.save(TOKENS)
    store.path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert store.load() == TOKENS
    assert mode(store.path) == 0o600
    assert f"token file {store.path} was readable by others" in caplog.text


def test_someone_elses_readable_token_file_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "conf" / "tokens.json")
    store.save(TOKENS)
    store.path.chmod(0o644)
    os.chown(store.path, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="readable by others and not yours") as caught:
        store.load()
    assert caught.value.exit_code == 78


def test_someone_elses_open_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o777)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="writable by others and not yours") as caught:
        TokenStore(directory / "tokens.json").save(TOKENS)
    assert caught.value.exit_code == 78
    assert not (directory / "tokens.json").exists()
