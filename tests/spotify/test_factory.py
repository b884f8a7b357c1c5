"""The factory: Settings in, an OAuth session and an API client out (the only settings reader)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.settings import Settings, env_name
from spotify_audience_sync.spotify.bearer import StaticToken
from spotify_audience_sync.spotify.factory import ads_client, oauth_session

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "AD_ACCOUNT_ID", "API_BASE_URL"):
        monkeypatch.delenv(env_name(name), raising=False)


def test_a_session_without_credentials_names_them() -> None:
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_CLIENT_ID, SPOTIFY_ADS_CLIENT_SECRET"):
        oauth_session(Settings(_env_file=None))


def test_a_session_uses_the_settings_refresh_token_and_token_url(tmp_path: Path) -> None:
    forms: list[bytes] = []

    def accounts(request: httpx2.Request) -> httpx2.Response:
        assert str(request.url) == "http://127.0.0.1:9/api/token"
        forms.append(request.content)
        return httpx2.Response(200, json={"access_token": "fresh", "expires_in": 3600})

    settings = Settings(
        _env_file=None,
        client_id="cid",
        client_secret="csecret",
        refresh_token="from-settings",
        token_url="http://127.0.0.1:9/api/token",
        token_store=tmp_path / "tokens.json",
    )
    session = oauth_session(settings, transport=httpx2.MockTransport(accounts))
    try:
        assert session.access_token() == "fresh"
    finally:
        session.close()
    assert b"refresh_token=from-settings" in forms[0]
    assert (tmp_path / "tokens.json").exists()


def test_a_client_talks_to_the_settings_base_url_and_ad_account() -> None:
    seen: list[str] = []

    def spotify(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, json={"paging": {}, "audiences": []})

    settings = Settings(
        _env_file=None, ad_account_id=ACCOUNT, api_base_url="http://127.0.0.1:9/ads/v3"
    )
    with ads_client(settings, StaticToken("t"), transport=httpx2.MockTransport(spotify)) as c:
        assert list(c.list_audiences()) == []
    assert seen[0].startswith(f"http://127.0.0.1:9/ads/v3/ad_accounts/{ACCOUNT}/audiences?")
