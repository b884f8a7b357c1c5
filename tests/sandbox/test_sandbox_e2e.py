"""End to end against the sandbox *process*: the client, the token session and the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

from conftest import FakeClock, SandboxProcess, gcs_upload
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import AuthError, RemoteError, TransientError
from spotify_audience_sync.spotify.auth import OAuthSession, TokenStore
from spotify_audience_sync.spotify.client import AdsClient
from spotify_audience_sync.spotify.models import Audience


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json")


@pytest.fixture
def session(sandbox_app: SandboxProcess, store: TokenStore) -> Iterator[OAuthSession]:
    minted = sandbox_app.admin("POST", "/tokens")
    tokens = OAuthSession(
        client_id=sandbox_app.env["SPOTIFY_ADS_CLIENT_ID"],
        client_secret=sandbox_app.env["SPOTIFY_ADS_CLIENT_SECRET"],
        token_url=sandbox_app.token_url,
        store=store,
        refresh_token=minted["refresh_token"],
    )
    yield tokens
    tokens.close()


@pytest.fixture
def client(sandbox_app: SandboxProcess, session: OAuthSession, clock) -> Iterator[AdsClient]:
    with AdsClient(
        base_url=sandbox_app.api_base_url,
        ad_account_id=sandbox_app.ad_account_id,
        tokens=session,
        sleep=clock.sleep,
    ) as ads:
        yield ads


def settle(client: AdsClient, audience_id: str) -> Audience:
    deadline = time.monotonic() + 5
    while True:
        found = client.get_audience(audience_id)
        if found.settled or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def new_audience(client: AdsClient, data: bytes, name: str = "E2E audience") -> Audience:
    slot = client.new_upload_url()
    assert gcs_upload(slot.upload_url, data).status_code == 200
    return client.create_audience(name, "made by the e2e test", slot.id)


def test_every_audience_operation(client, sandbox_app, make_csv) -> None:
    created = new_audience(client, make_csv(1200))
    assert created.status == "PROCESSING"
    assert settle(client, created.id).status == "BOOKABLE"
    assert [a.id for a in client.list_audiences(q="e2e")] == [created.id]
    assert client.edit_audience(created.id, name="Renamed").name == "Renamed"

    slot = client.replacement_upload_url(created.id)
    replacement = make_csv(1100, start=500)
    assert gcs_upload(slot.upload_url, replacement, chunk=256 * 1024).status_code == 200
    assert client.get_audience(created.id).status == "PROCESSING"
    final = settle(client, created.id)
    assert final.status == "BOOKABLE"
    assert final.size is not None
    assert final.size.min is not None
    assert final.size.min > 0

    membership = sandbox_app.admin("GET", f"/audiences/{created.id}/membership")
    expected = [line.split(",") for line in replacement.decode().splitlines()[1:]]
    assert [[r["type"], r["value"]] for r in membership["rows"]] == expected
    assert membership["well_formed"] == 1100

    assert client.delete_audience(created.id) == 1
    with pytest.raises(RemoteError) as info:
        client.get_audience(created.id)
    assert info.value.status == 404
    assert info.value.trace_id


def test_survives_a_429_storm_and_an_expired_token_mid_sequence(
    client, sandbox_app, store, make_csv, clock: FakeClock
) -> None:
    storm = {"route": "*", "count": 4, "status": 429, "retry_after": 2}
    sandbox_app.admin("POST", "/faults", json={"faults": [storm]})
    created = new_audience(client, make_csv(1000))
    assert clock.slept == [2.0, 2.0, 2.0, 2.0]  # Retry-After honoured, POSTs resent
    before = store.load()
    sandbox_app.admin("POST", "/faults", json={"expire_access_tokens": True})
    assert client.get_audience(created.id).id == created.id  # 401 → refresh → resent
    after = store.load()
    assert before is not None
    assert after is not None
    assert after.refresh_token != before.refresh_token  # the rotated token was stored
    assert [a.id for a in client.list_audiences()] == [created.id]


def test_the_server_rate_limit_is_waited_out(sandbox_app, session) -> None:
    sandbox_app.admin("POST", "/faults", json={"rate_limit": 3, "rate_window": 5.0})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        """Instead of waiting out the window, record the wait and let the window pass."""
        waits.append(seconds)
        sandbox_app.admin("POST", "/reset")

    with AdsClient(
        base_url=sandbox_app.api_base_url,
        ad_account_id=sandbox_app.ad_account_id,
        tokens=session,
        sleep=sleep,
    ) as ads:
        for _ in range(4):
            assert list(ads.list_audiences()) == []
    assert len(waits) == 1
    assert 1.0 <= waits[0] <= 5.0  # the server's Retry-After, in whole seconds


def test_get_survives_5xx_and_a_dropped_connection(client, sandbox_app, make_csv) -> None:
    created = new_audience(client, make_csv(5))
    faults = [
        {"route": "getAudience", "count": 2, "status": 503},
        {"route": "getAudience", "drop": True},
    ]
    sandbox_app.admin("POST", "/faults", json={"faults": faults})
    assert client.get_audience(created.id).id == created.id


def test_an_ambiguous_create_is_not_resent_and_reconciles_by_get(
    client, sandbox_app, make_csv
) -> None:
    slot = client.new_upload_url()
    assert gcs_upload(slot.upload_url, make_csv(5)).status_code == 200
    spoil = {"route": "createAudience", "status": 503, "when": "after"}
    sandbox_app.admin("POST", "/faults", json={"faults": [spoil]})
    with pytest.raises(TransientError, match="outcome unknown"):
        client.create_audience("Ambiguous", None, slot.id)
    assert client.get_audience(slot.id).name == "Ambiguous"  # it did happen, exactly once
    assert len(list(client.list_audiences())) == 1


def test_expired_login_says_log_in_again(client, sandbox_app) -> None:
    sandbox_app.admin(
        "POST", "/faults", json={"revoke_refresh_tokens": True, "expire_access_tokens": True}
    )
    with pytest.raises(AuthError, match="auth login"):
        list(client.list_audiences())


def test_error_codes_spelled_camel_case_are_parsed(client, sandbox_app) -> None:
    sandbox_app.admin("POST", "/faults", json={"error_codes_key": "errorCodes"})
    with pytest.raises(RemoteError) as info:
        client.get_audience("0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d")
    sandbox_app.admin("POST", "/faults", json={"error_codes_key": "error_codes"})
    assert info.value.codes == ("NOT_FOUND",)


# --- the CLI over the sandbox process --------------------------------------------------------
@pytest.fixture
def cli_env(sandbox_app, tmp_path, monkeypatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    for name, value in sandbox_app.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_STORE", str(tmp_path / "cli" / "tokens.json"))
    monkeypatch.delenv("SPOTIFY_ADS_REFRESH_TOKEN", raising=False)
    return {"store": TokenStore(tmp_path / "cli" / "tokens.json")}


def _play_browser(url: str) -> bool:
    with httpx2.Client(follow_redirects=True, timeout=10) as http:
        return http.get(url).status_code == 200


def test_cli_login_status_audiences_logout(cli_env, sandbox_app, monkeypatch, make_csv) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["audiences", "list"]).exit_code == 77  # not logged in yet

    monkeypatch.setattr("spotify_audience_sync.cli.api._has_browser", lambda: True)
    monkeypatch.setattr("webbrowser.open", _play_browser)
    login = runner.invoke(main, ["auth", "login", "--port", "0", "--timeout", "10"])
    assert login.exit_code == 0, login.output
    assert "Logged in" in login.output
    stored = cli_env["store"].load()
    assert stored is not None

    status = runner.invoke(main, ["auth", "status"])
    assert status.exit_code == 0
    assert "refresh token:  present" in status.output
    assert stored.refresh_token not in status.output
    assert stored.access_token not in status.output

    session = OAuthSession(
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        token_url=sandbox_app.token_url,
        store=cli_env["store"],
    )
    with AdsClient(
        base_url=sandbox_app.api_base_url, ad_account_id=sandbox_app.ad_account_id, tokens=session
    ) as ads:
        created = new_audience(ads, make_csv(5), name="CLI audience")
    session.close()

    listed = runner.invoke(main, ["audiences", "list"])
    assert listed.exit_code == 0
    assert created.id in listed.output
    assert "CLI audience" in listed.output
    shown = runner.invoke(main, ["audiences", "get", created.id, "--json"])
    assert json.loads(shown.output)["name"] == "CLI audience"

    refused = runner.invoke(main, ["audiences", "delete", created.id], input="n\n")
    assert refused.exit_code == 1
    assert created.id in runner.invoke(main, ["audiences", "list"]).output
    deleted = runner.invoke(main, ["audiences", "delete", created.id, "--yes"])
    assert deleted.exit_code == 0
    assert "Deleted 1" in deleted.output
    missing = runner.invoke(main, ["audiences", "get", created.id])
    assert missing.exit_code == 69
    assert "HTTP 404" in missing.output

    assert "Removed" in runner.invoke(main, ["auth", "logout"]).output
    assert cli_env["store"].load() is None


def test_cli_sandbox_rejects_a_bad_fault_spec() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", "--fail", "nope"])
    assert result.exit_code == 78
    assert "--fail" in result.output
