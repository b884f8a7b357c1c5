"""OAuth 2.0 for Spotify Accounts over authlib + httpx2: login, token store, refresh.

* ``login`` runs the authorization-code flow with PKCE and ``state`` through a one-shot
  loopback server on ``http://127.0.0.1:<port>/callback`` and stores the tokens.
* ``OAuthSession`` is the API client's auth layer (an ``httpx2.Auth``, through ``BearerAuth``
  in ``bearer``, which sets the header and answers a 401): it refreshes ahead of expiry and
  once after a 401, keeps a rotated refresh token (or the old one when none comes back), and
  lets only one thread refresh at a time. ``invalid_grant`` means "log in again", said plainly.
* ``TokenStore`` writes a JSON file readable by its owner only (0600), atomically. Other
  places (the state database, encrypted: ``sync.tokens``) implement the same ``TokenSink``.
* A rotated refresh token is saved before the access token is handed out: if no sink could
  keep it (and every *durable* sink, such as a configured state database, must), the refresh
  raises ``TokenNotPersistedError`` instead of letting the run write to Spotify with a login
  the next run will not have. ``refreshes`` tells callers (``check``) where each one went.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from spotify_audience_sync.errors import (
    AuthError,
    ConfigError,
    SyncError,
    TokenNotPersistedError,
    TransientError,
)
from spotify_audience_sync.spotify.bearer import LOGIN_HINT, BearerAuth
from spotify_audience_sync.spotify.redact import mask

__all__ = [
    "DEFAULT_LOGIN_PORT",
    "OAuthSession",
    "Refresh",
    "TokenSet",
    "TokenSink",
    "TokenStore",
    "exchange_code",
]

log = logging.getLogger(__name__)

DEFAULT_LOGIN_PORT = 8765


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint gave us, with absolute times (epoch seconds)."""

    access_token: str | None
    refresh_token: str | None
    expires_at: float
    obtained_at: float
    #: When the user logged in (kept across refreshes; 0 where unknown, e.g. an env token).
    logged_in_at: float = 0.0
    #: The token endpoint that issued these tokens: a store never mixes two services' logins.
    token_url: str | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={mask(self.access_token)!r}, "
            f"refresh_token={mask(self.refresh_token)!r}, expires_at={self.expires_at})"
        )

    @classmethod
    def from_reply(
        cls,
        reply: dict[str, Any],
        now: float,
        old_refresh: str | None = None,
        *,
        previous: TokenSet | None = None,
        token_url: str | None = None,
    ) -> TokenSet:
        """Keep the old refresh token when the reply carries none (no rotation), and the
        login time of ``previous`` (a refresh is not a login)."""
        return cls(
            access_token=str(reply["access_token"]),
            refresh_token=str(reply.get("refresh_token") or old_refresh or "") or None,
            expires_at=now + float(reply.get("expires_in") or 3600),
            obtained_at=now,
            logged_in_at=previous.logged_in_at if previous is not None else now,
            token_url=token_url or (previous.token_url if previous is not None else None),
        )


class TokenSink(Protocol):
    """A place that keeps tokens: the token file, or the state database (``sync.tokens``).

    ``durable`` sinks are the ones the user configured for runs on machines without a disk
    (a rotated token that does not reach them fails the run); the token file may be on a
    container's scratch disk, so it is not.
    """

    durable: bool

    def describe(self) -> str: ...
    def load(self) -> TokenSet | None: ...
    def save(self, tokens: TokenSet) -> None:
        """Keep ``tokens``; OSError or SyncError when this place cannot."""
        ...


@dataclass
class Refresh:
    """One refresh: whether the refresh token rotated, and where the new tokens went."""

    rotated: bool
    saved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class TokenStore:
    """The token file. Created 0600 in a 0700 directory; replaced atomically on each save."""

    durable = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()

    def describe(self) -> str:
        return f"the token file {self.path}"

    def load(self) -> TokenSet | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return TokenSet(**data)
        except (FileNotFoundError, NotADirectoryError):  # no file there (yet)
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise AuthError(f"token store {self.path} is unreadable; {LOGIN_HINT}") from exc

    def save(self, tokens: TokenSet) -> None:
        """Replace the file; refuse to replace a login issued by another token endpoint (the
        sandbox's tokens must never land on a real login, nor the reverse)."""
        try:
            held = self.load()
        except AuthError:
            held = None  # unreadable: replacing it is the repair
        if held is not None and held.token_url and tokens.token_url not in (None, held.token_url):
            raise ConfigError(
                f"token store {self.path} holds a login from {held.token_url}; not replacing it "
                f"with tokens from {tokens.token_url}: point SPOTIFY_ADS_TOKEN_STORE at a file "
                "of its own for this service"
            )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(tokens), handle)
        os.replace(temp, self.path)
        os.chmod(self.path, 0o600)

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def _oauth_client(
    client_id: str, client_secret: str, transport: httpx2.BaseTransport | None, **kwargs: Any
) -> OAuth2Client:
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_basic",
        transport=transport,
        timeout=httpx2.Timeout(30.0, connect=10.0),
        **kwargs,
    )


def _token_call(call: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
    """Run one token-endpoint call; translate authlib/httpx2 failures into our errors."""
    try:
        return call()
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise AuthError(
                f"{what}: Spotify refused the grant (invalid_grant: expired or revoked); "
                f"{LOGIN_HINT} again"
            ) from exc
        raise AuthError(f"{what}: Spotify Accounts refused ({exc.error}); check "
                        "SPOTIFY_ADS_CLIENT_ID and SPOTIFY_ADS_CLIENT_SECRET") from exc  # fmt: skip
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise TransientError(f"{what}: Spotify Accounts answered HTTP {status}") from exc
        raise AuthError(f"{what}: Spotify Accounts answered HTTP {status}") from exc
    except httpx2.TransportError as exc:
        raise TransientError(f"{what}: network failure ({type(exc).__name__})") from exc
    except ValueError as exc:
        raise TransientError(f"{what}: the token endpoint sent no JSON object") from exc


def exchange_code(
    *,
    client_id: str,
    client_secret: str,
    token_url: str,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    transport: httpx2.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Trade an authorization code (plus its PKCE verifier) for tokens, with Basic client auth."""
    with _oauth_client(client_id, client_secret, transport, redirect_uri=redirect_uri) as client:
        reply = _token_call(
            lambda: dict(
                client.fetch_token(
                    token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=redirect_uri,
                )
            ),
            "login",
        )
    return TokenSet.from_reply(reply, clock(), token_url=token_url)


class OAuthSession(BearerAuth):
    """A thread-safe token provider backed by a refresh token (and optionally a store).

    Pass it as ``auth=`` to any ``httpx2`` request, or as ``tokens`` to ``AdsClient``.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        store: TokenStore | None = None,
        sinks: Sequence[TokenSink] = (),
        refresh_token: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        leeway: float = 60.0,
    ) -> None:
        self._token_url = token_url
        self._clock = clock
        self._leeway = leeway
        self._lock = threading.Lock()
        self._sinks: list[TokenSink] = [x for x in (store, *sinks) if x is not None]
        self.refreshes: list[Refresh] = []
        stored = self._newest_stored()
        if stored is None and refresh_token:
            stored = TokenSet(None, refresh_token, 0.0, 0.0)
        if stored is None or not stored.refresh_token:
            raise AuthError(f"not logged in: {LOGIN_HINT}, or set SPOTIFY_ADS_REFRESH_TOKEN")
        self._tokens: TokenSet = stored
        self._fallback = refresh_token if refresh_token != stored.refresh_token else None
        self._client = _oauth_client(client_id, client_secret, transport)

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    @property
    def sinks(self) -> list[TokenSink]:
        return list(self._sinks)

    def _newest_stored(self) -> TokenSet | None:
        """The most recently obtained tokens among the sinks (another machine may have rotated
        the refresh token since this one's file was written)."""
        found = [t for t in (sink.load() for sink in self._sinks) if t and t.refresh_token]
        return max(found, key=lambda t: t.obtained_at) if found else None

    def close(self) -> None:
        self._client.close()

    def access_token(self) -> str:
        """A token valid for at least ``leeway`` more seconds, refreshing first if needed."""
        with self._lock:
            current = self._tokens
            if current.access_token and current.expires_at - self._leeway > self._clock():
                return current.access_token
            return self._refresh_locked()

    def force_refresh(self) -> Refresh:
        """Refresh now, whatever the access token's expiry: proves the login still works (a
        revoked one fails with AuthError). Returns where the new tokens went."""
        with self._lock:
            self._refresh_locked()
        return self.refreshes[-1]

    def refresh(self, stale: str) -> str:
        """Called after a 401. If another thread already replaced ``stale``, reuse its result."""
        with self._lock:
            current = self._tokens.access_token
            if current and current != stale and self._tokens.expires_at > self._clock():
                return current
            return self._refresh_locked()

    def _refresh_locked(self) -> str:
        old = self._tokens.refresh_token
        if not old:
            raise ConfigError(f"no refresh token: {LOGIN_HINT}")
        try:
            reply = _token_call(
                lambda: dict(self._client.refresh_token(self._token_url, refresh_token=old)),
                "token refresh",
            )
        except AuthError:
            # Another run (another machine) may have rotated the token since we read it, and
            # stored the new one: take it, once.
            newer = self._newest_stored()
            if newer is not None and newer.refresh_token not in (None, old):
                log.info("refresh token refused; another run rotated it: using the stored one")
                self._tokens = newer
                return self._refresh_locked()
            # The stored token died but SPOTIFY_ADS_REFRESH_TOKEN holds another: a newer login
            # handed to a container whose token file outlived the old one. Try it, once.
            if self._fallback is None:
                raise
            self._tokens, self._fallback = TokenSet(None, self._fallback, 0.0, 0.0), None
            log.info("stored refresh token refused; trying SPOTIFY_ADS_REFRESH_TOKEN")
            return self._refresh_locked()
        self._tokens = TokenSet.from_reply(
            reply, self._clock(), old_refresh=old, previous=self._tokens, token_url=self._token_url
        )
        rotated = self._tokens.refresh_token != old
        log.info("access token refreshed%s", " (refresh token rotated)" if rotated else "")
        self._persist(rotated)
        assert self._tokens.access_token is not None
        return self._tokens.access_token

    def _persist(self, rotated: bool) -> None:
        """Save to every sink; a rotated token must reach one (and every durable one)."""
        outcome = Refresh(rotated=rotated)
        missed_durable = False
        for sink in self._sinks:
            try:
                sink.save(self._tokens)
            except (OSError, SyncError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                outcome.failed.append(f"{sink.describe()}: {reason}")
                missed_durable = missed_durable or sink.durable
                log.warning("could not save tokens to %s: %s", sink.describe(), reason)
            else:
                outcome.saved.append(sink.describe())
        self.refreshes.append(outcome)
        # No sink at all: a library caller keeps tokens in memory (``tokens``) on purpose.
        if rotated and self._sinks and (missed_durable or not outcome.saved):
            tried = "; ".join(outcome.failed)
            raise TokenNotPersistedError(
                f"Spotify rotated the refresh token and it could not be persisted ({tried}); "
                "stopped before any write to Spotify. Give it a durable home: a writable "
                "SPOTIFY_ADS_TOKEN_STORE on a volume, or SPOTIFY_ADS_STATE_URL=postgresql://... "
                "with SPOTIFY_ADS_TOKEN_KEY; then log in again (`auth login`, or a new "
                "SPOTIFY_ADS_REFRESH_TOKEN), as the previous refresh token is no longer valid"
            )
