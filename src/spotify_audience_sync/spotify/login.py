"""``auth login``: the browser half of the authorization-code flow, with PKCE and ``state``.

A one-shot HTTP server on ``127.0.0.1`` (Spotify accepts loopback redirect URIs by IP, not
``localhost``) waits for the redirect, checks ``state``, and hands the code to
``auth.exchange_code``. The server runs in its own thread so whoever "is" the browser — a
person, or a test following redirects with httpx2 — can be synchronous.

Any local program can connect to that port, so the server must not be held hostage: each
connection gets its own thread and a socket timeout (an idle one blocks nothing, and
``timeout`` holds), a malformed ``state`` is a 400, and the code counts once it is in hand,
whether or not the browser is still there to read the "logged in" page.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from authlib.integrations.httpx_client import OAuth2Client

from spotify_audience_sync.errors import AuthError, ConfigError
from spotify_audience_sync.spotify.auth import (
    DEFAULT_LOGIN_PORT,
    TokenSet,
    TokenStore,
    exchange_code,
)

__all__ = ["login"]

_DONE_PAGE = b"<html><body><h1>Logged in.</h1>You can close this tab.</body></html>"
_FAIL_PAGE = b"<html><body><h1>Login failed.</h1>See the terminal.</body></html>"
#: Seconds one connection may stay idle before the server drops it.
CONNECTION_TIMEOUT = 10.0


class _CallbackServer(ThreadingHTTPServer):
    daemon_threads = True  # a connection left open never holds the login's exit

    def __init__(self, host: str, port: int, state: str) -> None:
        self.state = state
        self.code: str | None = None
        self.error: str | None = None
        self.done = threading.Event()
        super().__init__((host, port), _CallbackHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a connection that idled out or hung up is no concern of the login's."""


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""

    def _page(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/callback" or self.server.done.is_set():
            self._page(404, b"not found")
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        given = query.get("state", "").encode("utf-8", "replace")  # bytes: any text compares
        if not secrets.compare_digest(given, self.server.state.encode("ascii")):
            self._page(400, b"state mismatch: ignored")  # a stale tab or a forged request
            return
        if "error" in query:
            self.server.error = query["error"][:100]
            page = (400, _FAIL_PAGE)
        elif "code" in query:
            self.server.code = query["code"]
            page = (200, _DONE_PAGE)
        else:
            self._page(400, b"no code")
            return
        self.server.done.set()  # before the page: a browser gone meanwhile changes nothing
        with contextlib.suppress(OSError):
            self._page(*page)


def login(
    *,
    client_id: str,
    client_secret: str,
    authorize_url: str,
    token_url: str,
    store: TokenStore,
    port: int = DEFAULT_LOGIN_PORT,
    open_url: Callable[[str], object] | None = None,
    echo: Callable[[str], None] = print,
    timeout: float = 300.0,
    transport: httpx2.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Log in through the browser and store the tokens; returns them.

    ``port`` must match the redirect URI registered with the Spotify app (0 picks a free one,
    which only the sandbox accepts). ``open_url`` is called with the authorize URL once the
    callback server listens: a browser opener, or a test's fake browser.
    """
    try:
        server = _CallbackServer("127.0.0.1", port, state=secrets.token_urlsafe(24))
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port} for the callback: {exc}") from exc
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    verifier = secrets.token_urlsafe(64)
    with OAuth2Client(client_id=client_id, code_challenge_method="S256") as oauth:
        url, _ = oauth.create_authorization_url(
            authorize_url, state=server.state, code_verifier=verifier, redirect_uri=redirect_uri
        )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        echo(f"Open this URL to log in to Spotify (waiting on {redirect_uri}):\n{url}")
        if open_url is not None:
            open_url(url)
        if not server.done.wait(timeout):
            raise AuthError(f"login timed out after {timeout:.0f} s without a callback")
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    if server.error is not None or server.code is None:
        raise AuthError(f"login refused by Spotify ({server.error}); try again")
    tokens = exchange_code(
        client_id=client_id,
        client_secret=client_secret,
        token_url=token_url,
        code=server.code,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        transport=transport,
        clock=clock,
    )
    store.save(tokens)
    return tokens
