"""The login callback cannot be held hostage (#26): idle connections, odd input, a browser gone.

Each test plays the browser against the in-thread sandbox; a timer closes any socket a test
leaves idle, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from spotify_audience_sync.errors import AuthError
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.spotify import login as login_module
from spotify_audience_sync.spotify.auth import TokenStore
from spotify_audience_sync.spotify.login import login


@pytest.fixture
def idle() -> Iterator[list[socket.socket]]:
    """Sockets a test opens and leaves idle; closed after 8 s whatever happens."""
    sockets: list[socket.socket] = []
    closer = threading.Timer(8.0, lambda: [s.close() for s in sockets])
    closer.start()
    yield sockets
    closer.cancel()
    for sock in sockets:
        sock.close()


def _redirect(url: str) -> str:
    return parse_qs(urlsplit(url).query)["redirect_uri"][0]


def _connect_idle(url: str, sockets: list[socket.socket]) -> None:
    port = urlsplit(_redirect(url)).port
    assert port is not None
    sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))


def _browse(url: str) -> None:
    with httpx2.Client(follow_redirects=True, timeout=4) as http:
        assert http.get(url).status_code == 200


def _login(sandbox: Sandbox, store: TokenStore, open_url: Any, timeout: float = 10) -> Any:
    return login(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        authorize_url=sandbox.authorize_url,
        token_url=sandbox.token_url,
        store=store,
        port=0,
        open_url=open_url,
        echo=lambda _: None,
        timeout=timeout,
    )


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "conf" / "tokens.json")


def test_an_idle_local_connection_does_not_block_the_callback(
    sandbox: Sandbox, store: TokenStore, idle: list[socket.socket]
) -> None:
    def open_url(url: str) -> None:
        _connect_idle(url, idle)  # connects, sends nothing
        _browse(url)

    tokens = _login(sandbox, store, open_url)
    assert tokens.refresh_token is not None


def test_the_timeout_holds_with_an_idle_connection(
    sandbox: Sandbox, store: TokenStore, idle: list[socket.socket]
) -> None:
    started = time.monotonic()
    with pytest.raises(AuthError, match="timed out after 1 s"):
        _login(sandbox, store, lambda url: _connect_idle(url, idle), timeout=1)
    assert time.monotonic() - started < 4


def test_a_non_ascii_state_is_a_400_not_a_traceback(
    sandbox: Sandbox, store: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    def open_url(url: str) -> None:
        odd = httpx2.get(f"{_redirect(url)}?code=x&state=%C3%A9t%C3%A9", timeout=4)
        assert odd.status_code == 400
        _browse(url)

    assert _login(sandbox, store, open_url).refresh_token is not None
    assert "Traceback" not in capsys.readouterr().err


def test_a_browser_gone_before_the_page_does_not_leave_the_login_waiting(
    sandbox: Sandbox, store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_page(self: Any, status: int, body: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def open_url(url: str) -> None:
        monkeypatch.setattr(login_module._CallbackHandler, "_page", broken_page)
        with httpx2.Client(timeout=4) as http:
            callback = http.get(url).headers["Location"]  # the sandbox approves at once
            with pytest.raises(httpx2.TransportError):
                http.get(callback)  # the page never comes

    started = time.monotonic()
    tokens = _login(sandbox, store, open_url, timeout=5)
    assert tokens.refresh_token is not None
    assert time.monotonic() - started < 4
