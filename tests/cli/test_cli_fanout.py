"""Fan-out without false alarms (#25): many runs at once share one login.

24 real processes start together against a sandbox that rotates the refresh token on every
refresh (the old one dies at once) and hands out short-lived access tokens. They share the
login through a PostgreSQL state (each with a scratch token file of its own, as pods have) or
through one token file beside a state directory. Every run must exit 0, the token endpoint
must see about one refresh per access-token lifetime (not one or more per run), and the
stored login must be the live one afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spotify_audience_sync.sandbox import Sandbox, run_sandbox
from spotify_audience_sync.sandbox.segment import generate
from spotify_audience_sync.spotify.auth import TokenStore
from spotify_audience_sync.sync.postgres import PostgresState
from spotify_audience_sync.sync.tokens import DatabaseTokens, new_key, token_name

RUNS = 24


@pytest.fixture
def short_tokens() -> Iterator[Sandbox]:
    """Rotation on, and access tokens that live 90 s: the whole fan-out fits in about one."""
    with run_sandbox(processing_delay=0.05, rotate_refresh_tokens=True, token_ttl=90) as sb:
        yield sb


def _base_env(sandbox: Sandbox, root: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SPOTIFY_ADS_", "XDG_")) and k != "HOME"
    }
    env.update(sandbox.env())
    env.update(SPOTIFY_ADS_LOG_FORMAT="json", SPOTIFY_ADS_WAIT_TIMEOUT="60", HOME=str(root))
    return env


def _fan_out(root: Path, envs: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """Start every run at once; (exit code, stdout, stderr) of each."""
    segment = root / "segment.csv"
    generate(1000, seed=3).write_csv(segment)
    processes = []
    for i, env in enumerate(envs):
        work = root / f"run{i}"
        work.mkdir()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "spotify_audience_sync",
                    "sync",
                    str(segment),
                    "--audience-name",
                    f"fan-out {i}",
                ],
                env=env,
                cwd=work,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        results.append((process.returncode, out, err))
    return results


def _assert_all_synced(results: list[tuple[int, str, str]]) -> None:
    failed = [(code, err[-600:]) for code, _, err in results if code != 0]
    assert not failed, failed
    for _, out, _ in results:
        assert json.loads(out.strip().splitlines()[-1])["sync"]["action"] == "created"


def test_24_runs_sharing_a_state_database_refresh_once(
    short_tokens: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    key = new_key()
    env = _base_env(short_tokens, tmp_path)
    env.update(
        SPOTIFY_ADS_STATE_URL=pg_url,
        SPOTIFY_ADS_TOKEN_KEY=key,
        # The first login's token: it dies at the first refresh, whoever makes it.
        SPOTIFY_ADS_REFRESH_TOKEN=str(short_tokens.mint_tokens()["refresh_token"]),
    )
    short_tokens.accounts.reset_counts()
    envs = [
        {**env, "SPOTIFY_ADS_TOKEN_STORE": str(tmp_path / f"pod{i}" / "tokens.json")}
        for i in range(RUNS)
    ]
    started = time.monotonic()
    results = _fan_out(tmp_path, envs)
    elapsed = time.monotonic() - started
    _assert_all_synced(results)
    grants = short_tokens.accounts.grants.get("refresh_token", 0)
    lifetimes = int(elapsed / (short_tokens.config.token_ttl * 0.75)) + 1
    print(f"{RUNS} runs, {elapsed:.1f} s, {grants} token refreshes")
    assert 1 <= grants <= min(30, lifetimes + 1), (grants, elapsed)  # not one per run

    backend = PostgresState(pg_url)
    try:
        name = token_name(short_tokens.config.client_id, short_tokens.token_url)
        stored = DatabaseTokens(backend, name, key).load()
    finally:
        backend.close()
    assert stored is not None
    assert stored.refresh_token is not None
    assert short_tokens.accounts.is_live_refresh_token(stored.refresh_token)


def test_24_runs_sharing_a_token_file_refresh_under_its_lock(tmp_path: Path) -> None:
    """Access tokens of 3 s force refreshes while the runs go on: each is made once, under
    the token file's lock, and the others pick up its result."""
    with run_sandbox(processing_delay=0.05, rotate_refresh_tokens=True, token_ttl=3) as sandbox:
        store = TokenStore(tmp_path / "shared" / "tokens.json")
        env = _base_env(sandbox, tmp_path)
        env.update(
            SPOTIFY_ADS_STATE_DIR=str(tmp_path / "state"),
            SPOTIFY_ADS_TOKEN_STORE=str(store.path),
            SPOTIFY_ADS_REFRESH_TOKEN=str(sandbox.mint_tokens()["refresh_token"]),
        )
        sandbox.accounts.reset_counts()
        started = time.monotonic()
        results = _fan_out(tmp_path, [env] * RUNS)
        elapsed = time.monotonic() - started
        _assert_all_synced(results)
        grants = sandbox.accounts.grants.get("refresh_token", 0)
        # About one refresh per access-token lifetime (its last quarter is the margin).
        print(f"{RUNS} runs, {elapsed:.1f} s, {grants} token refreshes")
        lifetimes = int(elapsed / (sandbox.config.token_ttl * 0.75)) + 1
        assert 1 <= grants <= min(30, lifetimes + 1), (grants, elapsed)
        stored = store.load()
        assert stored is not None
        assert stored.refresh_token is not None
        assert sandbox.accounts.is_live_refresh_token(stored.refresh_token)
