"""OAuth 2.0 for Spotify Accounts over authlib + httpx2: login, token store, refresh.

* ``login`` runs the authorization-code flow with PKCE and ``state`` through a one-shot
  loopback server on ``http://127.0.0.1:<port>/callback`` and stores the tokens.
* ``OAuthSession`` is the API client's auth layer (an ``httpx2.Auth``, through ``BearerAuth``
  in ``bearer``, which sets the header and answers a 401): it refreshes ahead of expiry and
  once after a 401, keeps a rotated refresh token (or the old one when none comes back), and
  lets only one thread refresh at a time, and (through the sinks' locks) one run of many.
  ``invalid_grant`` means "log in again", said plainly, once it is sure to be true.
* ``TokenStore`` (``tokenfile``) writes a JSON file readable by its owner only (0600),
  atomically. Other places (the state database, encrypted: ``sync.tokens``) implement the
  same ``TokenSink``. A stored login is only ever sent to the token endpoint that issued it.
* A rotated refresh token is saved before the access token is handed out: if no sink could
  keep it (and every *durable* sink, such as a configured state database, must), the refresh
  raises ``TokenNotPersistedError`` instead of letting the run write to Spotify with a login
  the next run will not have. ``refreshes`` tells callers (``check``) where each one went.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

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
from spotify_audience_sync.spotify.credentials import Refresh, SharedSink, TokenSet, TokenSink
from spotify_audience_sync.spotify.tokenfile import TokenStore

__all__ = [
    "DEFAULT_LOGIN_PORT",
    "OAuthSession",
    "Refresh",
    "SharedSink",
    "TokenSet",
    "TokenSink",
    "TokenStore",
    "exchange_code",
]

log = logging.getLogger(__name__)

DEFAULT_LOGIN_PORT = 8765


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

    Many runs may share one login (a plan fanned out on 24 pods, one state database): a run
    whose access token needs renewing takes every shared sink's lock (``SharedSink.lock``),
    re-reads the stored tokens and adopts a live access token another run stored; only if
    there is none does it refresh, and the others then adopt its result. A refused refresh
    token is final only when it is still the stored one.
    """

    #: How many newer stored refresh tokens a refused refresh may try before giving up.
    MAX_ADOPTIONS = 3

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
        the refresh token since this one's file was written). A login issued by another token
        endpoint stops the run here, before anything is sent."""
        found = []
        for sink in self._sinks:
            tokens = sink.load()
            if tokens is None or not tokens.refresh_token:
                continue
            if tokens.token_url and tokens.token_url != self._token_url:
                raise AuthError(
                    f"the login in {sink.describe()} was issued by {tokens.token_url}; it is "
                    f"never sent elsewhere: log in again against {self._token_url} "
                    f"(`spotify-audience-sync auth login`), or point SPOTIFY_ADS_TOKEN_URL "
                    "back at its issuer"
                )
            found.append(tokens)
        return max(found, key=lambda t: t.obtained_at) if found else None

    def _live(self, tokens: TokenSet | None, margin: float | None = None) -> bool:
        """Whether ``tokens`` has an access token good for a margin more: the leeway, or a
        quarter of its lifetime when that is shorter (short-lived tokens stay usable)."""
        if tokens is None or not tokens.access_token:
            return False
        if margin is None:
            margin = min(self._leeway, max(0.0, tokens.expires_at - tokens.obtained_at) / 4)
        return tokens.expires_at - margin > self._clock()

    def close(self) -> None:
        self._client.close()

    def access_token(self) -> str:
        """A token valid for at least the margin more, renewed first if needed."""
        with self._lock:
            current = self._tokens
            if self._live(current):
                assert current.access_token is not None
                return current.access_token
            return self._renew(stale=current.access_token)

    def force_refresh(self) -> Refresh:
        """Refresh now, whatever the access token's expiry: proves the login still works (a
        revoked one fails with AuthError). Returns where the new tokens went."""
        with self._lock, self._shared():
            self._adopt_newer()
            self._refresh_locked()
        return self.refreshes[-1]

    def refresh(self, stale: str) -> str:
        """Called after a 401. If another thread already replaced ``stale``, reuse its result."""
        with self._lock:
            current = self._tokens
            if self._live(current, margin=0.0) and current.access_token != stale:
                assert current.access_token is not None
                return current.access_token
            return self._renew(stale=stale)

    @contextmanager
    def _shared(self) -> Iterator[None]:
        """Hold the lock of every shared sink, always in the same order (file, database)."""
        with ExitStack() as stack:
            for sink in self._sinks:
                lock = getattr(sink, "lock", None)
                if lock is not None:
                    stack.enter_context(lock())
            yield

    def _adopt_newer(self) -> TokenSet | None:
        """Take the stored tokens when another run stored newer ones; returns them."""
        stored = self._newest_stored()
        if stored is not None and stored.obtained_at > self._tokens.obtained_at:
            self._tokens = stored
            return stored
        return None

    def _renew(self, stale: str | None) -> str:
        """Under the shared locks: a live access token another run stored, else a refresh."""
        with self._shared():
            newer = self._adopt_newer()
            if newer is not None and newer.access_token != stale and self._live(newer):
                log.debug("access token renewed by another run: reusing it")
                assert newer.access_token is not None
                return newer.access_token
            return self._refresh_locked()

    def _refresh_locked(self, adoptions: int = 0) -> str:
        old = self._tokens.refresh_token
        if not old:
            raise ConfigError(f"no refresh token: {LOGIN_HINT}")
        try:
            reply = _token_call(
                lambda: dict(self._client.refresh_token(self._token_url, refresh_token=old)),
                "token refresh",
            )
        except AuthError as refusal:
            return self._after_refusal(old, adoptions, refusal)
        self._tokens = TokenSet.from_reply(
            reply, self._clock(), old_refresh=old, previous=self._tokens, token_url=self._token_url
        )
        rotated = self._tokens.refresh_token != old
        log.info("access token refreshed%s", " (refresh token rotated)" if rotated else "")
        self._persist(rotated)
        assert self._tokens.access_token is not None
        return self._tokens.access_token

    def _after_refusal(self, refused: str, adoptions: int, refusal: AuthError) -> str:
        """``refused`` was refused: final (``refusal`` raised) only if it is still the stored
        token and the environment holds no other."""
        newer = self._newest_stored()
        if newer is not None and newer.refresh_token not in (None, refused):
            if adoptions >= self.MAX_ADOPTIONS:
                raise AuthError(
                    "Spotify kept refusing refresh tokens that other runs stored (invalid_grant)"
                    f"; {LOGIN_HINT} again"
                ) from None
            # Another run (another machine, or one that takes no lock) rotated it since we
            # read it, and stored the new one: use that.
            log.info("refresh token refused; another run rotated it: using the stored one")
            self._tokens = newer
            if self._live(newer):
                assert newer.access_token is not None
                return newer.access_token
            return self._refresh_locked(adoptions + 1)
        # The stored token died but SPOTIFY_ADS_REFRESH_TOKEN holds another: a newer login
        # handed to a container whose token file outlived the old one. Try it, once.
        if self._fallback is None:
            raise refusal
        self._tokens, self._fallback = TokenSet(None, self._fallback, 0.0, 0.0), None
        log.info("stored refresh token refused; trying SPOTIFY_ADS_REFRESH_TOKEN")
        return self._refresh_locked(adoptions + 1)

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
