"""Build the Spotify clients from ``Settings``: the one module of ``spotify`` that reads them.

The client (``client``) and the OAuth session (``auth``) take plain values, so they can be used
and tested without the connector's settings; this factory is where the CLI turns settings
into them, and where a missing credential becomes a ConfigError that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx2

from spotify_audience_sync.settings import Settings
from spotify_audience_sync.spotify.auth import OAuthSession, TokenSink, TokenStore
from spotify_audience_sync.spotify.bearer import TokenProvider
from spotify_audience_sync.spotify.client import AdsClient

__all__ = ["ads_client", "oauth_session"]


def oauth_session(
    settings: Settings, sinks: Sequence[TokenSink] = (), **kwargs: Any
) -> OAuthSession:
    """The session for the settings' credentials and token store; ``sinks`` keep tokens
    elsewhere too (the state database); kwargs as for OAuthSession."""
    settings.require("client_id", "client_secret")
    assert settings.client_id is not None
    assert settings.client_secret is not None
    refresh = settings.refresh_token.get_secret_value() if settings.refresh_token else None
    return OAuthSession(
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        token_url=settings.token_url,
        store=TokenStore(settings.token_store),
        sinks=sinks,
        refresh_token=refresh,
        **kwargs,
    )


def ads_client(settings: Settings, tokens: TokenProvider | httpx2.Auth, **kwargs: Any) -> AdsClient:
    """The client for the settings' API base URL and ad account; kwargs as for AdsClient."""
    return AdsClient(
        base_url=settings.api_base_url,
        ad_account_id=settings.account_id,
        tokens=tokens,
        upload_origins=[o for o in settings.upload_origins.split(",") if o],
        **kwargs,
    )
