"""The refresh token in the state database: encrypted at rest, unreadable without the key."""

from __future__ import annotations

import pytest

from conftest import PG_PASSWORD, pg_query
from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.spotify.auth import TokenSet
from spotify_audience_sync.sync.postgres import PostgresState
from spotify_audience_sync.sync.tokens import DatabaseTokens, new_key, token_name

TOKENS = TokenSet("BQ-access-secret-1", "AQ-refresh-secret-1", 2_000_000_000.0, 1_900_000_000.0)
NAME = token_name("sandbox-client", "http://127.0.0.1:9/api/token")


def test_the_token_key_is_needed_to_read_a_stored_token(pg_url: str) -> None:
    key, other = new_key(), new_key()
    backend = PostgresState(pg_url)
    try:
        DatabaseTokens(backend, NAME, key).save(TOKENS)
        assert DatabaseTokens(backend, NAME, key).load() == TOKENS
        assert DatabaseTokens(backend, NAME, None).load() is None  # no key: nothing readable
        with pytest.raises(ConfigError, match="cannot be decrypted with SPOTIFY_ADS_TOKEN_KEY"):
            DatabaseTokens(backend, NAME, other).load()
        # A key rotation: the new key first encrypts, the old one still decrypts.
        assert DatabaseTokens(backend, NAME, f"{other},{key}").load() == TOKENS
    finally:
        backend.close()


def test_the_database_holds_ciphertext_only(pg_url: str) -> None:
    backend = PostgresState(pg_url)
    try:
        DatabaseTokens(backend, NAME, new_key()).save(TOKENS)
    finally:
        backend.close()
    schema = pg_url.rsplit("schema=", 1)[1]
    rows = pg_query(f'SELECT name, ciphertext FROM "{schema}".tokens')
    assert [name for name, _ in rows] == [NAME]
    dump = repr(pg_query(f'SELECT * FROM "{schema}".tokens'))
    for secret in ("AQ-refresh-secret-1", "BQ-access-secret-1", PG_PASSWORD):
        assert secret not in dump


def test_without_a_key_saving_fails_with_a_message_naming_the_key(pg_url: str) -> None:
    backend = PostgresState(pg_url)
    try:
        sink = DatabaseTokens(backend, NAME, None)
        assert sink.durable
        with pytest.raises(ConfigError, match="SPOTIFY_ADS_TOKEN_KEY is not set"):
            sink.save(TOKENS)
    finally:
        backend.close()


def test_a_malformed_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a Fernet key"):
        DatabaseTokens(object(), NAME, "not-a-key")  # type: ignore[arg-type]
