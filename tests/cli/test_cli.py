"""CLI behaviour: exit codes and messages (one test per error case lives beside its command)."""

from __future__ import annotations

from click.testing import CliRunner

from spotify_audience_sync import __version__
from spotify_audience_sync.cli.main import main


def test_version_flag_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2


def test_an_unexpected_error_is_reported_without_its_message(monkeypatch) -> None:
    """A bug's exception text may quote a value: it is withheld unless --debug is given."""
    import spotify_audience_sync.segment.pipeline as pipeline

    def boom(*_args: object, **_kwargs: object) -> None:
        raise ValueError("someone@example.com")

    monkeypatch.setattr(pipeline, "prepare_segment", boom)
    from pathlib import Path

    fixture = str(Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv")
    result = CliRunner().invoke(main, ["prepare", fixture, "-o", "-"])
    assert result.exit_code == 1
    assert "internal error (ValueError)" in result.stderr
    assert "someone@example.com" not in result.stderr + result.stdout
    debug = CliRunner().invoke(main, ["--debug", "prepare", fixture, "-o", "-"])
    assert isinstance(debug.exception, ValueError)


def test_completion_prints_each_shells_script() -> None:
    for shell in ("bash", "zsh", "fish"):
        result = CliRunner().invoke(main, ["completion", shell])
        assert result.exit_code == 0
        assert "_SPOTIFY_AUDIENCE_SYNC_COMPLETE" in result.output
    refused = CliRunner().invoke(main, ["completion", "tcsh"])
    assert refused.exit_code == 2


def test_completion_answers_a_bash_request(capsys, monkeypatch) -> None:
    """What the bash script asks when a person types `spotify-audience-sync co<TAB>`."""
    import pytest

    from spotify_audience_sync.cli.main import run

    monkeypatch.setenv("_SPOTIFY_AUDIENCE_SYNC_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "spotify-audience-sync co")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit):
        run([])
    assert capsys.readouterr().out.split() == ["plain,completion"]
