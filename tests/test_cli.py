"""CLI behaviour: exit codes and messages (one test per error case lives beside its command)."""

from __future__ import annotations

from click.testing import CliRunner

from spotify_audience_sync import __version__
from spotify_audience_sync.cli import main


def test_version_flag_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
