"""Pipes, help, signals and warnings at the entry point (issue 20, items 13 and 14; issue 19's
--debug): a closed pipe ends quietly, help prints help only, a SIGTERM during start-up still
gets its final object and exit 143, a sandbox stopped by SIGTERM exits 0, a warning shows once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main, run
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.sandbox.segment import generate
from spotify_audience_sync.sync.backend import RunRecord, open_state

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"
ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"
COMMAND = [sys.executable, "-m", "spotify_audience_sync"]


def _closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe the reader closes at once, as `| head -0` would."""
    process = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    process.stdout.close()  # before the command writes its first line
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


def test_history_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with open_state(str(state)) as backend:
        for i in range(300):
            backend.record_run(
                RunRecord(f"r{i}", "2026-12-01T00:00:00Z", "2026-12-01T00:01:00Z", ACCOUNT)
            )
    result = _closed_pipe("history", "--state-dir", str(state), "--ad-account-id", ACCOUNT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def _create(name: str, seed: int) -> Path:
    """An audience of that name, made by `sync`; the segment's path."""
    path = Path(f"segment-{seed}.csv")
    generate(1500, seed=seed).select("Email").write_csv(path)
    created = CliRunner().invoke(main, ["sync", str(path), "--audience-name", name, "--no-wait"])
    assert created.exit_code == 0, created.output
    return path


def test_audiences_list_into_a_closed_pipe_ends_quietly(env: Sandbox) -> None:
    _create("Piped", 5)
    result = _closed_pipe("audiences", "list")
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr == ""


def test_help_with_stdout_piped_prints_help_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["sync", "--help", "--log-format", "json"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: spotify-audience-sync sync")
    assert '"event"' not in out  # no JSON `result` line after the help


def test_a_usage_error_still_ends_with_its_final_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["sync", "--bogus", "--log-format", "json"])
    assert stopped.value.code == 2
    final = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert final["event"] == "error"
    assert final["error"] == "UsageError"


def test_sigterm_during_start_up_ends_with_the_final_object_and_143(tmp_path: Path) -> None:
    """The signal comes while the CLI is still importing (click), not after a fixed delay: a
    busy machine's start-up time must not decide whether the test sees the window."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "spotify_audience_sync", "sync", str(FIXTURE),
         "--audience-name", "early", "--log-format", "json", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        for line in process.stderr:  # -X importtime: one line as each import finishes
            if re.search(r"\|\s+click\.", line):  # a part of click is in, the CLI's not yet
                break
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-2000:]
    final = json.loads(stdout.splitlines()[-1])
    assert final["event"] == "error"
    assert final["error"] == "Terminated"
    assert final["exit_code"] == 143


def test_the_sandbox_stopped_by_sigterm_exits_0_quietly() -> None:
    process = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("sandbox listening on"), first
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "error" not in stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["audiences", "list", "--debug"], id="audiences-list"),
        pytest.param(["history", "--debug"], id="history"),
        pytest.param(["prepare", str(FIXTURE), "-o", "-", "--debug"], id="prepare"),
    ],
)
def test_debug_is_accepted_after_any_command(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, args, env={"SPOTIFY_ADS_STATE_DIR": str(tmp_path)})
    assert "No such option" not in result.output
    assert result.exit_code != 2


def _similar(env: Sandbox, *args: str) -> Any:
    path = _create("CRM Gold", 9)
    return CliRunner().invoke(
        main, ["sync", str(path), "--audience-name", "crm gold", "--dry-run", *args]
    )


def test_a_similar_name_is_warned_about_once_in_a_sentence(env: Sandbox) -> None:
    result = _similar(env, "--log-format", "human")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("is named like 'crm gold'") == 1, result.stderr
    assert "{'code'" not in result.stderr
    assert "warning: warning" not in result.stderr


def test_a_similar_name_is_one_json_event(env: Sandbox) -> None:
    result = _similar(env, "--log-format", "json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    warnings = [x for x in lines if x["event"] == "warning"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["code"] == "similar_audience_name"
