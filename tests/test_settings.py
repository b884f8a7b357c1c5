"""Settings: env prefix, .env, secrets hidden, and bad values named by their variable."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.settings import (
    DEFAULT_API_BASE_URL,
    Settings,
    default_token_store,
    env_name,
    load_settings,
)

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "AD_ACCOUNT_ID", "API_BASE_URL"):
        monkeypatch.delenv(env_name(name), raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_point_at_spotify_and_the_user_config_dir() -> None:
    settings = load_settings()
    assert settings.api_base_url == DEFAULT_API_BASE_URL
    assert settings.token_url == "https://accounts.spotify.com/api/token"
    assert settings.token_store == default_token_store()
    assert settings.ad_account_id is None


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("SPOTIFY_ADS_CLIENT_SECRET", "s3cr3t-value")
    settings = load_settings()
    assert settings.account_id == ACCOUNT
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SPOTIFY_ADS_CLIENT_ID=from-dotenv\n", encoding="utf-8")
    assert load_settings().client_id == "from-dotenv"


def test_overrides_beat_env_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_CLIENT_ID", "from-env")
    assert load_settings(client_id="from-flag").client_id == "from-flag"
    assert load_settings(client_id=None).client_id == "from-env"


def test_trailing_slash_is_dropped_from_urls() -> None:
    settings = load_settings(api_base_url="http://127.0.0.1:9/ads/v3/")
    assert settings.api_base_url == "http://127.0.0.1:9/ads/v3"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        pytest.param("ad_account_id", "not-a-uuid", "SPOTIFY_ADS_AD_ACCOUNT_ID", id="uuid"),
        pytest.param("api_base_url", "ftp://x", "SPOTIFY_ADS_API_BASE_URL", id="scheme"),
        pytest.param("token_url", "no-host", "SPOTIFY_ADS_TOKEN_URL", id="no-host"),
        pytest.param(
            "upload_origins", "https://ok.test,ftp://x", "SPOTIFY_ADS_UPLOAD_ORIGINS", id="origin"
        ),
        pytest.param(
            "upload_origins", "https://h.test/path", "SPOTIFY_ADS_UPLOAD_ORIGINS", id="origin-path"
        ),
    ],
)
def test_bad_values_fail_naming_the_variable(field: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        load_settings(**{field: value})
    assert value not in str(info.value)


def test_bad_env_value_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", "1234")
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_AD_ACCOUNT_ID: must be a UUID"):
        load_settings()


def test_require_names_every_missing_variable() -> None:
    settings = Settings(_env_file=None)
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_CLIENT_ID, SPOTIFY_ADS_CLIENT_SECRET"):
        settings.require("client_id", "client_secret")
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_AD_ACCOUNT_ID"):
        _ = settings.account_id


def test_upload_origins_are_normalized_and_reach_the_client() -> None:
    from spotify_audience_sync.spotify.bearer import StaticToken
    from spotify_audience_sync.spotify.factory import ads_client

    settings = load_settings(
        upload_origins=" https://a.test:8443/ , http://127.0.0.1:9 ",
        ad_account_id="3f1d8c2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f",
    )
    assert settings.upload_origins == "https://a.test:8443,http://127.0.0.1:9"
    with ads_client(settings, StaticToken("t")) as client:
        assert client._upload_origins == {"https://a.test:8443", "http://127.0.0.1:9"}


# --- where credentials may go, and which .env may say so (#26.1) ----------------------------
def test_a_dotenv_of_another_user_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SPOTIFY_ADS_TOKEN_URL=http://127.0.0.1:18799/api/token\n", encoding="utf-8")
    os.chown(dotenv, 65534, 65534)
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    assert settings.token_url == "https://accounts.spotify.com/api/token"
    assert f"ignoring {dotenv}: it is owned by another user" in caplog.text


def test_a_dotenv_others_can_write_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SPOTIFY_ADS_CLIENT_ID=planted\n", encoding="utf-8")
    dotenv.chmod(0o666)
    with caplog.at_level(logging.WARNING):
        assert load_settings().client_id is None
    assert f"ignoring {dotenv}: it is writable by group or others" in caplog.text


@pytest.mark.parametrize(
    ("field", "url"),
    [
        pytest.param("token_url", "http://evil.example/api/token", id="plain-http-elsewhere"),
        pytest.param("token_url", "https://evil.example/api/token", id="https-elsewhere"),
        pytest.param("token_url", "http://accounts.spotify.com/api/token", id="spotify-http"),
        pytest.param("api_base_url", "https://spotify.com.evil.example/v3", id="lookalike"),
        pytest.param("authorize_url", "http://10.0.0.5:8700/authorize", id="lan-sandbox"),
    ],
)
def test_credentials_go_only_to_spotify_over_https_or_to_loopback(field: str, url: str) -> None:
    with pytest.raises(ConfigError, match=f"{env_name(field)}: .*SPOTIFY_ADS_ENDPOINT_ORIGINS"):
        load_settings(**{field: url})


@pytest.mark.parametrize(
    "url",
    [
        "https://accounts.spotify.com/api/token",
        "https://api-partner.spotify.com/ads/v3",
        "http://127.0.0.1:8700/api/token",
        "http://[::1]:8700/api/token",
        "http://localhost:8700/api/token",
    ],
)
def test_spotify_and_loopback_endpoints_are_accepted(url: str) -> None:
    assert load_settings(token_url=url).token_url == url


def test_an_origin_named_in_the_setting_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_ENDPOINT_ORIGINS", "https://proxy.corp.example:8443")
    url = "https://proxy.corp.example:8443/api/token"
    assert load_settings(token_url=url).token_url == url
    with pytest.raises(ConfigError, match="SPOTIFY_ADS_TOKEN_URL"):
        load_settings(token_url="http://proxy.corp.example:8443/api/token")  # not the origin
