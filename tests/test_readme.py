"""The README is the front door: its --help blocks and command list must match the code."""

from __future__ import annotations

import re
from pathlib import Path

import click

from conftest import load_script
from spotify_audience_sync.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_help_blocks_are_current() -> None:
    module = load_script("readme_help")
    fresh = module.render(README)  # type: ignore[attr-defined]
    assert fresh == README, (
        "README --help blocks are stale: run `uv run python scripts/readme_help.py`"
    )


def test_every_command_is_in_the_readme_command_table() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert re.search(rf"^\| `{name}\b", README, re.M), f"command {name!r} missing from README"


def test_every_command_has_help() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        assert (command.help or "").strip(), f"{name} has no help text"


def test_readme_names_the_ci_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "uv run --frozen pytest"
    assert command in README
    assert ci.rstrip().splitlines()[-1].strip() == command


def test_every_setting_is_documented() -> None:
    from spotify_audience_sync.settings import Settings, env_name

    for field in Settings.model_fields:
        assert f"`{env_name(field)}`" in README, f"{env_name(field)} missing from README"


def test_demo_script_says_how_to_run_the_command_and_keeps_its_exit_code(tmp_path) -> None:
    """After `scripts/demo`, a new user learns how to run the tool: .venv/bin is not on PATH."""
    import os
    import subprocess

    fake = tmp_path / "uv"  # stands in for uv: the real setup and demo are tested elsewhere
    fake.write_text('#!/bin/sh\n[ "$1" = run ] && exit 3\nexit 0\n', encoding="utf-8")
    fake.chmod(0o755)
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo")],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3  # the demo's own exit code, not the hint's
    hints = [line.split("#")[0].strip() for line in result.stderr.splitlines() if "  #" in line]
    assert hints == ["uv run spotify-audience-sync --help", "uv tool install ."]
    for hint in hints:
        assert hint in README
    assert "pipx install ." in result.stderr
    assert "pipx install ." in README
