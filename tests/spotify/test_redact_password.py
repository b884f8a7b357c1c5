"""A URL with a password typed on the command line is warned about (#26.5): ``ps`` shows it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main
from spotify_audience_sync.spotify.redact import password_in_url

SECRET = "pw-On-The-Command-Line-9"


@pytest.mark.parametrize(
    ("args", "flag", "variable"),
    [
        pytest.param(
            ["prepare", "--query", "select 1", "--database-url",
             f"postgresql://me:{SECRET}@127.0.0.1:1/db"],
            "--database-url",
            "SPOTIFY_ADS_DATABASE_URL",
            id="database-url",
        ),
        pytest.param(
            ["history", "--state-url", f"postgresql://me:{SECRET}@127.0.0.1:1/db"],
            "--state-url",
            "SPOTIFY_ADS_STATE_URL",
            id="state-url",
        ),
    ],
)  # fmt: skip
def test_a_password_on_the_command_line_is_warned_about(
    args: list[str],
    flag: str,
    variable: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", "5a1d8c9e-0000-4000-8000-000000000001")
    with caplog.at_level(logging.WARNING, logger="spotify_audience_sync"):
        result = CliRunner().invoke(main, args)
    warned = [r.getMessage() for r in caplog.records if "carries a password" in r.getMessage()]
    assert warned == [
        f"{flag} carries a password, which other users can see in the process list and shell "
        f"history; set {variable} in the environment instead"
    ]
    assert SECRET not in result.output + caplog.text


def test_only_a_password_counts() -> None:
    assert password_in_url("postgresql://me:pw@host/db")
    assert not password_in_url("postgresql://me@host/db")
    assert not password_in_url("duckdb:///file.db")
    assert not password_in_url(None)
