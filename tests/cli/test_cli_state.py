"""Scheduled syncs on ephemeral machines (#14): the PostgreSQL state backend end to end.

Container-style runs are real processes, each with a fresh HOME (no token file, no state dir
surviving it), sharing only SPOTIFY_ADS_STATE_URL, against a sandbox that rotates the refresh
token on every refresh: the state, the lock and the rotated token must all live in the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import PG_PASSWORD, pg_query
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.sandbox import Sandbox, run_sandbox
from spotify_audience_sync.sandbox.segment import generate
from spotify_audience_sync.sync.postgres import PostgresState
from spotify_audience_sync.sync.tokens import DatabaseTokens, new_key, token_name

AUDIENCE = "container audience"


@pytest.fixture
def rotating() -> Iterator[Sandbox]:
    """A sandbox that answers every refresh with a new refresh token (and kills the old one)."""
    with run_sandbox(processing_delay=0.2, rotate_refresh_tokens=True) as sandbox:
        yield sandbox


def segment(directory: Path, seed: int) -> str:
    path = directory / f"segment-{seed}.csv"
    generate(3000, seed=seed).write_csv(path)
    return str(path)


class Machine:
    """Runs the CLI as a fresh container would: new HOME, nothing but the environment."""

    def __init__(self, sandbox: Sandbox, root: Path, state_url: str, key: str, refresh: str):
        self.root, self.count = root, 0
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SPOTIFY_ADS_", "XDG_")) and k != "HOME"
        }
        self.env.update(sandbox.env())
        self.env.update(
            SPOTIFY_ADS_STATE_URL=state_url,
            SPOTIFY_ADS_TOKEN_KEY=key,
            SPOTIFY_ADS_REFRESH_TOKEN=refresh,  # the first login's token: dead after one refresh
            SPOTIFY_ADS_LOG_FORMAT="json",
            SPOTIFY_ADS_WAIT_TIMEOUT="60",
            PYTHONUNBUFFERED="1",
        )
        self.outputs: list[str] = []

    def fresh(self) -> tuple[dict[str, str], Path]:
        self.count += 1
        home = self.root / f"home{self.count}"
        home.mkdir()
        return {**self.env, "HOME": str(home)}, home

    def start(self, *args: str) -> subprocess.Popen[str]:
        env, home = self.fresh()
        return subprocess.Popen(
            [sys.executable, "-m", "spotify_audience_sync", *args],
            env=env,
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str) -> tuple[int, str, str]:
        process = self.start(*args)
        out, err = process.communicate(timeout=240)
        self.outputs += [out, err]
        return process.returncode, out, err


def final(stdout: str) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return line


def stored_refresh_token(state_url: str, sandbox: Sandbox, key: str) -> str:
    backend = PostgresState(state_url)
    try:
        name = token_name(sandbox.config.client_id, sandbox.token_url)
        tokens = DatabaseTokens(backend, name, key).load()
    finally:
        backend.close()
    assert tokens is not None
    assert tokens.refresh_token is not None
    return tokens.refresh_token


def test_three_container_runs_share_only_the_state_database(
    rotating: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    first_token = str(rotating.mint_tokens()["refresh_token"])
    key = new_key()
    machine = Machine(rotating, tmp_path, pg_url, key, first_token)
    results = []
    for seed, expected in ((7, "created"), (7, "skipped"), (8, "replaced")):
        code, out, err = machine.run("sync", segment(tmp_path, seed), "--audience-name", AUDIENCE)
        assert code == 0, err + out
        result = final(out)
        assert result["event"] == "result"
        assert result["sync"]["action"] == expected
        results.append(result)
    audience_id = results[-1]["sync"]["audience_id"]
    assert {r["sync"]["audience_id"] for r in results} == {audience_id}  # one audience
    assert len(rotating.membership(audience_id)) == results[-1]["sync"]["identifiers"]

    code, out, err = machine.run("history", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["run_id"] for row in rows] == [r["run_id"] for r in reversed(results)]
    assert [row["action"] for row in rows] == ["replaced", "skipped", "created"]
    assert [row["exit_code"] for row in rows] == [0, 0, 0]
    assert rows[0]["status"] == "BOOKABLE"
    assert rows[0]["identifiers"] == results[-1]["sync"]["identifiers"]

    # No secret anywhere: outputs, logs (the JSON lines carry them), history rows.
    schema = pg_url.rsplit("schema=", 1)[1]
    history_rows = repr(pg_query(f'SELECT * FROM "{schema}".runs'))
    history_rows += repr(pg_query(f'SELECT * FROM "{schema}".audience_state'))
    secrets = [
        first_token,
        stored_refresh_token(pg_url, rotating, key),
        PG_PASSWORD,
        key,
        rotating.config.client_secret,
    ]
    assert first_token != secrets[1]  # the token rotated, and the database kept the new one
    for text in [*machine.outputs, history_rows]:
        for secret in secrets:
            assert secret not in text


def test_two_concurrent_runs_of_one_audience_one_is_refused(
    rotating: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    rotating.config.processing_delay = 3.0  # the first run holds the lock while it waits
    machine = Machine(
        rotating, tmp_path, pg_url, new_key(), str(rotating.mint_tokens()["refresh_token"])
    )
    first = machine.start("sync", segment(tmp_path, 7), "--audience-name", AUDIENCE)
    lines: list[str] = []
    uploading = threading.Event()

    def pump() -> None:
        assert first.stdout is not None
        for line in first.stdout:
            lines.append(line)
            if '"event":"upload"' in line:
                uploading.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert uploading.wait(120), "the first run never reached its upload"
        code, out, err = machine.run("sync", segment(tmp_path, 7), "--audience-name", AUDIENCE)
        assert code == 4, err + out
        assert "another sync of this audience is running" in err
        assert "***" in err  # the database is named, its password masked
        assert PG_PASSWORD not in err + out
        assert first.wait(timeout=240) == 0, first.stderr.read() if first.stderr else ""
    finally:
        first.kill()
        first.wait()
        reader.join(10)
        for stream in (first.stdout, first.stderr):
            if stream is not None:
                stream.close()
    result = final("".join(lines))
    assert result["sync"]["action"] == "created"
    members = rotating.membership(result["sync"]["audience_id"])
    assert len(members) == result["sync"]["identifiers"]  # exact: one upload, not two
    listed = rotating.audiences.list(rotating.ad_account_id, {})["audiences"]
    assert len(listed) == 1


# --- in-process: exit 74, check's report of the token, status after --no-wait ----------------
def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, [*args])


def test_without_a_token_key_a_rotation_stops_the_sync_before_any_write(
    env: Sandbox, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_STATE_URL", pg_url)
    result = invoke(
        "sync", segment(tmp_path, 7), "--audience-name", AUDIENCE, "--log-format", "human"
    )
    assert result.exit_code == 74, result.stderr
    assert "SPOTIFY_ADS_TOKEN_KEY is not set" in result.stderr
    assert "stopped before any write to Spotify" in result.stderr
    assert PG_PASSWORD not in result.stderr + result.stdout
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_check_with_no_usable_token_store_exits_74_not_ok(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("")
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_STORE", str(tmp_path / "blocker" / "tokens.json"))
    result = invoke("check", "--log-format", "human")
    assert result.exit_code == 74, result.stderr
    assert "OK" not in result.stdout
    assert "could not be persisted" in result.stderr


def test_check_says_where_the_rotated_token_went(
    env: Sandbox, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_STATE_URL", pg_url)
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_KEY", new_key())
    result = invoke("check", "--log-format", "human")
    assert result.exit_code == 0, result.stderr
    shown = pg_url.replace(PG_PASSWORD, "***")
    assert result.stdout.startswith(f"OK: settings valid, state database {shown} ready, ")
    assert result.stderr == (
        "token: refreshed; Spotify rotated the refresh token, the new one was saved to the "
        f"token file {tmp_path / 'tokens.json'} and the state database {shown}\n"
    )


def test_status_records_the_outcome_of_a_no_wait_run(
    env: Sandbox, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_STATE_URL", pg_url)
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_KEY", new_key())
    synced = invoke(
        "sync", segment(tmp_path, 7), "--audience-name", AUDIENCE, "--no-wait", "--log-format",
        "json",
    )  # fmt: skip
    assert synced.exit_code == 0, synced.stderr
    result = final(synced.stdout)
    audience_id = result["sync"]["audience_id"]
    env.audiences.force_status(audience_id, "BOOKABLE")
    status = invoke("status", "--audience", AUDIENCE, "--json")
    assert status.exit_code == 0, status.stderr
    (line,) = [json.loads(x) for x in status.stdout.splitlines()]
    assert (line["audience_id"], line["status"], line["run_id"]) == (
        audience_id,
        "BOOKABLE",
        result["run_id"],
    )
    history = invoke("history", "--audience", audience_id, "--json")
    (run,) = [json.loads(x) for x in history.stdout.splitlines()]
    assert (run["run_id"], run["action"], run["status"]) == (
        result["run_id"],
        "created",
        "BOOKABLE",
    )
    assert run["status_checked_at"] is not None


def test_the_state_dir_keeps_history_too(env: Sandbox, tmp_path: Path) -> None:
    synced = invoke("sync", segment(tmp_path, 7), "--audience-name", AUDIENCE)
    assert synced.exit_code == 0, synced.stderr
    history = invoke("history")
    assert history.exit_code == 0
    (line,) = history.stdout.splitlines()
    assert " created " in line
    assert line.endswith(AUDIENCE)
