"""The emulated Spotify Accounts service: authorize codes, token grants, bearer checks.

Behaviour follows the contract: Basic client auth, 10-minute codes bound to their redirect URI
and PKCE challenge, expiring access tokens, refresh-token rotation (the old one stops working),
refresh tokens that die six months after the original login, ``invalid_grant`` otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from spotify_audience_sync.sandbox.config import SandboxConfig
from spotify_audience_sync.sandbox.problem import Problem

__all__ = ["Accounts"]

CODE_TTL = 600.0


@dataclass
class _Code:
    redirect_uri: str
    challenge: str | None
    expires_at: float


def _oauth(status: int, error: str, description: str) -> Problem:
    return Problem(status, description, code=error, kind="oauth")


def _is_loopback_callback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.path == "/callback"


class Accounts:
    """Thread-safe token book-keeping; ``clock`` is wall time so it can be frozen in tests."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        #: Token-endpoint grants answered, by grant type (``GET /_sandbox/stats``).
        self.grants: dict[str, int] = {}

    # --- authorize ---------------------------------------------------------------------------
    def authorize(self, params: dict[str, str]) -> str:
        """Approve at once (the sandbox has no user to ask) and return the redirect URL."""
        if params.get("client_id") != self._config.client_id:
            raise Problem(400, "INVALID_CLIENT: Invalid client", kind="text")
        redirect_uri = params.get("redirect_uri", "")
        if not _is_loopback_callback(redirect_uri):
            raise Problem(400, "INVALID_CLIENT: Invalid redirect URI", kind="text")
        if params.get("response_type") != "code":
            return f"{redirect_uri}?error=unsupported_response_type"
        challenge = params.get("code_challenge")
        if challenge and params.get("code_challenge_method") != "S256":
            return f"{redirect_uri}?error=invalid_request"
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(redirect_uri, challenge, self._clock() + CODE_TTL)
        state = params.get("state")
        suffix = f"&state={state}" if state is not None else ""
        return f"{redirect_uri}?code={code}{suffix}"

    # --- token endpoint ----------------------------------------------------------------------
    def check_client(self, authorization: str | None, form: dict[str, str]) -> None:
        """Basic auth (or the form fields Spotify also accepts) must name the sandbox client."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            except ValueError:
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
        if client_id != self._config.client_id or secret != self._config.client_secret:
            raise _oauth(401, "invalid_client", "Invalid client")

    def grant(self, form: dict[str, str]) -> dict[str, object]:
        grant_type = form.get("grant_type")
        with self._lock:
            self.grants[str(grant_type)] = self.grants.get(str(grant_type), 0) + 1
        if grant_type == "authorization_code":
            return self._grant_code(form)
        if grant_type == "refresh_token":
            return self._grant_refresh(form)
        raise _oauth(400, "unsupported_grant_type", "grant_type must be authorization_code")

    def _grant_code(self, form: dict[str, str]) -> dict[str, object]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at < self._clock():
            raise _oauth(400, "invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _oauth(400, "invalid_grant", "Invalid redirect URI")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
            if not secrets.compare_digest(expected, code.challenge):
                raise _oauth(400, "invalid_grant", "code_verifier was incorrect")
        return self._issue(refresh=None, refresh_expires=self._clock() + self._config.refresh_ttl)

    def _grant_refresh(self, form: dict[str, str]) -> dict[str, object]:
        token = form.get("refresh_token", "")
        with self._lock:
            expires = self._refresh.get(token)
        if expires is None or expires < self._clock():
            raise _oauth(400, "invalid_grant", "Invalid refresh token")
        if self._config.rotate_refresh_tokens:
            with self._lock:
                self._refresh.pop(token, None)
            return self._issue(refresh=None, refresh_expires=expires)
        return self._issue(refresh=token, refresh_expires=expires)

    def _issue(self, *, refresh: str | None, refresh_expires: float) -> dict[str, object]:
        access = "BQ" + secrets.token_urlsafe(40)
        reply: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._config.token_ttl,
            "scope": "",
        }
        with self._lock:
            self._access[access] = self._clock() + self._config.token_ttl
            if refresh is None:
                new_refresh = "AQ" + secrets.token_urlsafe(48)
                self._refresh[new_refresh] = refresh_expires
                reply["refresh_token"] = new_refresh
        return reply

    def mint(self) -> dict[str, object]:
        """Tokens without the browser dance (admin endpoint; headless rehearsals and tests)."""
        return self._issue(refresh=None, refresh_expires=self._clock() + self._config.refresh_ttl)

    # --- resource side -----------------------------------------------------------------------
    def check_bearer(self, authorization: str | None) -> str:
        """Return the access token, or raise the 401 the Ads API answers."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Problem(401, "No token provided")
        token = authorization[7:].strip()
        with self._lock:
            expires = self._access.get(token)
        if expires is None:
            raise Problem(401, "Invalid access token")
        if expires <= self._clock():
            raise Problem(401, "The access token expired")
        return token

    def is_live_refresh_token(self, token: str) -> bool:
        """Whether ``token`` would be accepted now (tests: the stored login is the live one)."""
        with self._lock:
            expires = self._refresh.get(token)
        return expires is not None and expires >= self._clock()

    def reset_counts(self) -> None:
        with self._lock:
            self.grants.clear()

    def expire_access_tokens(self) -> int:
        """Fault: every access token issued so far expires now (the mid-sequence expiry)."""
        with self._lock:
            now = self._clock()
            for token in self._access:
                self._access[token] = now
            return len(self._access)

    def revoke_refresh_tokens(self) -> int:
        """Fault: every refresh token dies, as six months after login (→ invalid_grant)."""
        with self._lock:
            count = len(self._refresh)
            self._refresh.clear()
            return count
