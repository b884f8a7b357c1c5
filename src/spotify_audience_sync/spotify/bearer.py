"""Bearer-token authentication as an ``httpx2.Auth`` layer, so the API client never sees a 401.

:class:`BearerAuth` is httpx's sans-I/O auth generator: it sets ``Authorization: Bearer …``
and yields the request; on a 401 it asks for a new token once, handing over the refused one
(so threads that were refused together refresh once), and resends; a second 401 is an
AuthError that says to log in again. The client drives it (``auth=`` on each request) and keeps
only rate limiting, retries and error mapping.

A token source subclasses BearerAuth and supplies ``access_token`` and ``refresh``
(``OAuthSession`` in ``auth``, :class:`StaticToken` here). Anything else that only satisfies
the :class:`TokenProvider` protocol is adapted by :func:`bearer`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import httpx2

from spotify_audience_sync.errors import AuthError
from spotify_audience_sync.spotify.problem import remote_error

__all__ = ["LOGIN_HINT", "WHAT", "BearerAuth", "StaticToken", "TokenProvider", "bearer"]

LOGIN_HINT = "run `spotify-audience-sync auth login`"
WHAT = "spotify_audience_sync.what"
"""Request extension naming the operation (``get audience …``) for the AuthError message."""


class TokenProvider(Protocol):
    """Gives bearer tokens; ``refresh(stale)`` is called once after a 401 with the refused one."""

    def access_token(self) -> str: ...

    def refresh(self, stale: str) -> str: ...


class BearerAuth(httpx2.Auth):
    """The 401 dance for any token source; subclasses supply ``access_token`` and ``refresh``."""

    requires_request_body = True  # a 401 is answered by resending the same body
    requires_response_body = True  # the second 401's sp_trace_id is in its body

    def access_token(self) -> str:
        raise NotImplementedError

    def refresh(self, stale: str) -> str:
        raise NotImplementedError

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        request.headers["Authorization"] = f"Bearer {self.refresh(token)}"
        response = yield request
        if response.status_code == 401:
            what = str(request.extensions.get(WHAT) or f"{request.method} {request.url.path}")
            trace = remote_error(response, what).trace_id
            raise AuthError(
                f"{what}: Spotify refused the access token even after a refresh "
                f"(HTTP 401, sp_trace_id={trace}); {LOGIN_HINT}"
            )


class StaticToken(BearerAuth):
    """A fixed access token (tests, short scripts): a 401 cannot be repaired."""

    def __init__(self, token: str) -> None:
        self._token = token

    def access_token(self) -> str:
        return self._token

    def refresh(self, stale: str) -> str:
        raise AuthError(f"the access token was refused and cannot be refreshed; {LOGIN_HINT}")


class _Provided(BearerAuth):
    """Adapts a plain TokenProvider."""

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens

    def access_token(self) -> str:
        return self._tokens.access_token()

    def refresh(self, stale: str) -> str:
        return self._tokens.refresh(stale)


def bearer(tokens: TokenProvider | httpx2.Auth) -> httpx2.Auth:
    """``tokens`` as an ``httpx2.Auth``: itself if it already is one, else adapted."""
    return tokens if isinstance(tokens, httpx2.Auth) else _Provided(tokens)
