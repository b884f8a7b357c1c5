"""The auth/audiences/sandbox commands: help everywhere, exit codes, messages, no secrets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main

COMMANDS = [
    ["auth", "login"],
    ["auth", "status"],
    ["auth", "logout"],
    ["audiences", "list"],
    ["audiences", "get"],
    ["audiences", "delete"],
    ["sandbox"],
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "AD_ACCOUNT_ID"):
        monkeypatch.delenv(f"SPOTIFY_ADS_{name}", raising=False)
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_STORE", str(tmp_path / "tokens.json"))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) > 3


def test_status_and_logout_without_a_login() -> None:
    runner = CliRunner()
    status = runner.invoke(main, ["auth", "status"])
    assert status.exit_code == 0
    assert "none: run `auth login`" in status.output
    assert "No stored login" in runner.invoke(main, ["auth", "logout"]).output


def test_login_without_credentials_names_the_variables() -> None:
    result = CliRunner().invoke(main, ["auth", "login", "--no-browser"])
    assert result.exit_code == 78
    assert "SPOTIFY_ADS_CLIENT_ID, SPOTIFY_ADS_CLIENT_SECRET" in result.output


def test_a_bad_ad_account_id_fails_at_start(monkeypatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", "12")
    result = CliRunner().invoke(main, ["audiences", "list"])
    assert result.exit_code == 78
    assert "SPOTIFY_ADS_AD_ACCOUNT_ID" in result.output


def test_secrets_are_not_echoed_in_errors(monkeypatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_CLIENT_ID", "cid")
    monkeypatch.setenv("SPOTIFY_ADS_CLIENT_SECRET", "super-secret-value")
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_URL", "not a url")
    result = CliRunner().invoke(main, ["auth", "login", "--no-browser"])
    assert result.exit_code == 78
    assert "SPOTIFY_ADS_TOKEN_URL" in result.output
    assert "super-secret" not in result.output


def test_sandbox_prints_complete_isolated_settings(monkeypatch) -> None:
    """Pasted into a shell, the exports keep sandbox tokens and state out of the real ones."""
    import shlex
    from pathlib import Path

    from spotify_audience_sync.sandbox.server import SandboxServer
    from spotify_audience_sync.settings import default_state_dir, default_token_store

    monkeypatch.setattr(SandboxServer, "serve_forever", lambda self, poll_interval: None)
    result = CliRunner().invoke(main, ["sandbox", "--port", "0"])
    assert result.exit_code == 0, result.output
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )
    store = Path(exports["SPOTIFY_ADS_TOKEN_STORE"])
    state = Path(exports["SPOTIFY_ADS_STATE_DIR"])
    assert store.parent == state.parent
    assert store.parent.name.startswith("sas-sandbox-")
    assert store != default_token_store()
    assert state != default_state_dir()
    assert exports["SPOTIFY_ADS_REFRESH_TOKEN"] == ""  # a real one in the shell is blanked
    assert not store.parent.exists()  # removed when the sandbox stopped
    assert f"its tokens and state stay in {store.parent}" in result.stderr


@pytest.mark.parametrize("command", [["audiences", "get"], ["audiences", "delete", "--yes"]])
def test_an_audience_id_is_checked_locally(command: list[str]) -> None:
    """Not sent to Spotify (which would answer 4xx, exit 69): no settings are even read."""
    result = CliRunner().invoke(main, [*command, "notauuid"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for 'AUDIENCE_ID': 'notauuid' is not an id: ids are UUIDs like "
        "12345678-1234-1234-1234-123456789abc"
    )


def test_an_empty_audience_list_says_so(env) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["audiences", "list"])
    assert empty.exit_code == 0
    assert empty.stdout == ""  # stdout stays data: `| wc -l` still counts 0
    assert empty.stderr == f"No audiences in ad account {env.ad_account_id}.\n"
    searched = runner.invoke(main, ["audiences", "list", "-q", "nu 200k"])
    assert (
        searched.stderr == f"No audiences matching 'nu 200k' in ad account {env.ad_account_id}.\n"
    )
    assert runner.invoke(main, ["audiences", "list", "--json"]).output == ""  # data only


def _log_in(sandbox, monkeypatch, tmp_path, ago=3 * 86400.0):
    """A stored login from the sandbox, as `auth login` leaves it."""
    import time as clock

    from spotify_audience_sync.spotify.auth import TokenSet, TokenStore

    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_STORE", str(tmp_path / "tokens.json"))
    minted = sandbox.mint_tokens()
    login = clock.time() - ago
    tokens = TokenSet.from_reply(minted, login, token_url=sandbox.token_url)
    TokenStore(tmp_path / "tokens.json").save(tokens)
    return tokens


def test_auth_status_keeps_the_login_time_across_refreshes(sandbox, monkeypatch, tmp_path) -> None:
    from spotify_audience_sync.spotify.auth import TokenStore

    tokens = _log_in(sandbox, monkeypatch, tmp_path)
    result = CliRunner().invoke(main, ["auth", "status", "--check"])
    assert result.exit_code == 0, result.output
    assert "check:          OK, Spotify accepted the login" in result.output
    stored = TokenStore(tmp_path / "tokens.json").load()
    assert stored is not None
    assert stored.logged_in_at == tokens.logged_in_at  # a refresh is not a login
    assert stored.obtained_at > tokens.obtained_at
    again = CliRunner().invoke(main, ["auth", "status"])
    assert "last refreshed:" in again.output
    assert "not checked with Spotify" in again.output
    assert stored.refresh_token not in again.output + result.output


def test_auth_status_check_fails_when_the_server_revoked_the_login(
    sandbox, monkeypatch, tmp_path
) -> None:
    _log_in(sandbox, monkeypatch, tmp_path, ago=60)  # its access token is still unexpired
    sandbox.accounts.revoke_refresh_tokens()
    plain = CliRunner().invoke(main, ["auth", "status"])
    assert plain.exit_code == 0
    assert "unexpired" in plain.output  # without --check nothing is sent: it cannot know
    checked = CliRunner().invoke(main, ["auth", "status", "--check"])
    assert checked.exit_code == 77
    assert "auth login" in checked.output


def test_a_token_store_holding_another_services_login_is_not_overwritten(tmp_path) -> None:
    from spotify_audience_sync.errors import ConfigError
    from spotify_audience_sync.spotify.auth import TokenSet, TokenStore

    store = TokenStore(tmp_path / "tokens.json")
    real = TokenSet("a", "r", 2.0, 1.0, 1.0, "https://accounts.spotify.com/api/token")
    store.save(real)
    sandboxed = TokenSet("b", "s", 2.0, 1.0, 1.0, "http://127.0.0.1:5000/api/token")
    with pytest.raises(ConfigError, match=r"holds a login from https://accounts\.spotify\.com"):
        store.save(sandboxed)
    assert store.load() == real
    store.save(TokenSet("c", "r2", 3.0, 2.0, 1.0, real.token_url))  # the same service: fine


def test_the_sandbox_refuses_a_non_loopback_address_without_allow_remote() -> None:
    """Run as a process: before the fix it would serve on every interface (and time out)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "spotify_audience_sync", "sandbox", "--host", "0.0.0.0",
         "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--host 0.0.0.0 is not a loopback address" in done.stderr
    assert "--allow-remote" in done.stderr


def test_with_allow_remote_the_admin_routes_need_the_printed_key(monkeypatch) -> None:
    """Bound to loopback by the test (it talks to 127.0.0.1 only), as if on 0.0.0.0."""
    import httpx2

    from spotify_audience_sync.sandbox.server import SandboxServer

    captured: list[SandboxServer] = []
    real_bind = SandboxServer.server_bind

    def bind_loopback(self: SandboxServer) -> None:
        self.server_address = ("127.0.0.1", 0)
        real_bind(self)

    def serve(self: SandboxServer, poll_interval: float) -> None:
        captured.append(self)

    monkeypatch.setattr(SandboxServer, "server_bind", bind_loopback)
    monkeypatch.setattr(SandboxServer, "serve_forever", serve)
    result = CliRunner().invoke(main, ["sandbox", "--host", "0.0.0.0", "--port", "0",
                                       "--allow-remote"])  # fmt: skip
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stderr.splitlines() if "X-Sandbox-Key" in x)
    key = line.rsplit(" ", 1)[-1]
    assert len(key) >= 32

    sandbox = captured[0].sandbox
    assert sandbox.admin_key == key
    monkeypatch.undo()  # serve for real now, on 127.0.0.1
    sandbox.server = SandboxServer(("127.0.0.1", 0), sandbox)
    sandbox.start()
    try:
        base = f"http://127.0.0.1:{sandbox.server.server_address[1]}/_sandbox"
        for method, path in [
            ("POST", "/tokens"),
            ("GET", "/audiences/x/membership"),
            ("GET", "/health"),
            ("POST", "/reset"),
        ]:
            assert httpx2.request(method, base + path, timeout=5).status_code == 401, path
            wrong = {"X-Sandbox-Key": "wrong"}
            assert httpx2.request(method, base + path, headers=wrong, timeout=5).status_code == 401
        minted = httpx2.post(base + "/tokens", headers={"X-Sandbox-Key": key}, timeout=5)
        assert minted.status_code == 200
        assert "refresh_token" in minted.json()
    finally:
        sandbox.stop()
