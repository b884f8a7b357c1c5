"""The refresh token kept in the state database, encrypted, for machines with no disk.

Spotify may rotate the refresh token on every refresh; a container that loses its token file
then cannot log in on its next run. With a database state backend, the tokens go to its
``tokens`` table as well, encrypted with Fernet (``cryptography``: AES-128-CBC plus
HMAC-SHA256, a timestamped authenticated token) under ``SPOTIFY_ADS_TOKEN_KEY``: one or more
Fernet keys (32 url-safe base64 bytes each), comma-separated, the first encrypting and every
one decrypting (``MultiFernet``), so a key can be rotated. Without the key a stored token
cannot be read, and a database dump alone gives no login.

The access token and its expiry are kept beside the refresh token (same row, same key), so
parallel runs reuse a live one; a refresh happens under the database's advisory lock for the
login (``lock``), after which the others re-read instead of refreshing (``auth.OAuthSession``).

A database configured without a key is still a *durable* sink: a rotated token that cannot
reach it stops the run (``TokenNotPersistedError``) with a message that names the key.
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.spotify.auth import TokenSet, TokenSink

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from spotify_audience_sync.settings import Settings

__all__ = ["DatabaseTokens", "new_key", "token_name", "token_sinks"]

log = logging.getLogger(__name__)

KEY_HINT = "make one with `spotify-audience-sync auth new-key`"


class TokenTable(Protocol):
    """What the database backend offers for tokens: ciphertext in, ciphertext out."""

    def describe(self) -> str: ...
    def load_token(self, name: str) -> str | None: ...
    def save_token(self, name: str, ciphertext: str) -> None: ...
    def token_lock(self, name: str) -> AbstractContextManager[object]: ...


def new_key() -> str:
    """A fresh Fernet key for SPOTIFY_ADS_TOKEN_KEY."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def _cipher(keys: str) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    try:
        return MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
    except ValueError:
        raise ConfigError(
            "SPOTIFY_ADS_TOKEN_KEY: not a Fernet key (32 url-safe base64-encoded bytes; "
            f"several separated by commas); {KEY_HINT}"
        ) from None


def token_name(client_id: str, token_url: str) -> str:
    """The row of one login: the Spotify app and the Accounts host (a sandbox is another)."""
    return f"{client_id}@{urlsplit(token_url).netloc}"


class DatabaseTokens:
    """A ``TokenSink`` in the state database; ``keys`` None means no key was configured."""

    durable = True

    def __init__(self, table: TokenTable, name: str, keys: str | None) -> None:
        self._table, self._name = table, name
        self._cipher = _cipher(keys) if keys else None

    def describe(self) -> str:
        return f"the state database {self._table.describe()}"

    def load(self) -> TokenSet | None:
        from cryptography.fernet import InvalidToken

        stored = self._table.load_token(self._name)
        if stored is None:
            return None
        if self._cipher is None:
            log.warning(
                "a token is stored in the state database but SPOTIFY_ADS_TOKEN_KEY is unset"
            )
            return None
        try:
            data = json.loads(self._cipher.decrypt(stored.encode("ascii")))
            return TokenSet(**data)
        except InvalidToken:
            raise ConfigError(
                f"the token stored in {self.describe()} cannot be decrypted with "
                "SPOTIFY_ADS_TOKEN_KEY: set the key that stored it (or add it after the new one, "
                "comma-separated)"
            ) from None
        except (ValueError, TypeError):
            raise ConfigError(f"the token stored in {self.describe()} is unreadable") from None

    def lock(self) -> AbstractContextManager[object]:
        """The database's lock for this login: runs on every machine refresh one at a time."""
        return self._table.token_lock(self._name)

    def save(self, tokens: TokenSet) -> None:
        if self._cipher is None:
            raise ConfigError(f"SPOTIFY_ADS_TOKEN_KEY is not set ({KEY_HINT})")
        ciphertext = self._cipher.encrypt(json.dumps(asdict(tokens)).encode()).decode("ascii")
        self._table.save_token(self._name, ciphertext)


def token_sinks(backend: object, settings: Settings) -> list[TokenSink]:
    """The sinks beside the token file: the state database's table, when it is one."""
    load_token = getattr(backend, "load_token", None)
    if load_token is None or settings.client_id is None:
        return []
    keys = settings.token_key.get_secret_value() if settings.token_key else None
    name = token_name(settings.client_id, settings.token_url)
    return [DatabaseTokens(backend, name, keys)]  # type: ignore[arg-type]
