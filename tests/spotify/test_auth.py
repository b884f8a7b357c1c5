"""OAuth: token store, refresh ahead of expiry (frozen clock), rotation, invalid_grant, races,
and ``auth login`` played end to end against the sandbox with httpx2 as the browser."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from spotify_audience_sync.errors import (
    AuthError,
    ConfigError,
    TokenNotPersistedError,
    TransientError,
)
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.spotify.auth import OAuthSession, TokenSet, TokenStore
from spotify_audience_sync.spotify.login import login

TOKEN_URL = "https://accounts.spotify.com/api/token"


class FakeAccounts:
    """A token endpoint: checks Basic auth, counts grants, rotates when told to."""

    def __init__(self, *, rotate: bool = True, answer: httpx2.Response | None = None) -> None:
        self.rotate = rotate
        self.answer = answer
        self.forms: list[dict[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.gate.wait(5)
        assert (
            request.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:csecret").decode()
        )
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        if self.answer is not None:
            return self.answer
        n = len(self.forms)
        reply: dict[str, Any] = {
            "access_token": f"access-{n}",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        if self.rotate:
            reply["refresh_token"] = f"refresh-{n}"
        return httpx2.Response(200, json=reply)


def session(fake: FakeAccounts, clock: Any, store: TokenStore | None, **kw: Any) -> OAuthSession:
    return OAuthSession(
        client_id="cid",
        client_secret="csecret",
        token_url=TOKEN_URL,
        store=store,
        transport=httpx2.MockTransport(fake),
        clock=clock,
        **kw,
    )


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "conf" / "tokens.json")


def test_refreshes_ahead_of_expiry_with_a_frozen_clock(clock, store) -> None:
    fake = FakeAccounts()
    tokens = session(fake, clock, store, refresh_token="refresh-0")
    assert tokens.access_token() == "access-1"  # no access token yet: refresh at once
    clock.advance(3600 - 61)
    assert tokens.access_token() == "access-1"  # still more than the 60 s leeway left
    clock.advance(2)
    assert tokens.access_token() == "access-2"  # inside the leeway: refreshed ahead of expiry
    assert [f["grant_type"] for f in fake.forms] == ["refresh_token", "refresh_token"]
    tokens.close()


def test_rotated_refresh_token_is_stored_0600(clock, store) -> None:
    fake = FakeAccounts(rotate=True)
    tokens = session(fake, clock, store, refresh_token="refresh-0")
    tokens.access_token()
    tokens.close()
    saved = store.load()
    assert saved is not None
    assert saved.refresh_token == "refresh-1"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    # the next process starts from the store, not the (now stale) environment token
    again = session(fake, clock, store, refresh_token="refresh-0")
    clock.advance(4000)
    again.access_token()
    again.close()
    assert fake.forms[-1]["refresh_token"] == "refresh-1"


def test_old_refresh_token_is_kept_when_none_is_returned(clock, store) -> None:
    tokens = session(FakeAccounts(rotate=False), clock, store, refresh_token="keep-me")
    tokens.access_token()
    tokens.close()
    assert tokens.tokens.refresh_token == "keep-me"


def test_invalid_grant_tells_the_user_to_log_in_again(clock) -> None:
    answer = httpx2.Response(400, json={"error": "invalid_grant", "error_description": "Invalid"})
    tokens = session(FakeAccounts(answer=answer), clock, None, refresh_token="old")
    with pytest.raises(AuthError, match=r"invalid_grant.*spotify-audience-sync auth login"):
        tokens.access_token()
    tokens.close()


def test_invalid_client_names_the_settings(clock) -> None:
    answer = httpx2.Response(401, json={"error": "invalid_client"})
    tokens = session(FakeAccounts(answer=answer), clock, None, refresh_token="old")
    with pytest.raises(AuthError, match="SPOTIFY_ADS_CLIENT_SECRET"):
        tokens.access_token()
    tokens.close()


def test_accounts_outage_is_transient(clock) -> None:
    tokens = session(FakeAccounts(answer=httpx2.Response(503)), clock, None, refresh_token="r")
    with pytest.raises(TransientError, match="503"):
        tokens.access_token()
    tokens.close()


def test_no_login_at_all_is_an_auth_error(clock, store) -> None:
    with pytest.raises(AuthError, match="auth login"):
        session(FakeAccounts(), clock, store)


def test_concurrent_refreshes_after_401_do_not_race(clock) -> None:
    fake = FakeAccounts()
    tokens = session(fake, clock, None, refresh_token="r")
    stale = tokens.access_token()
    fake.gate.clear()  # hold the token endpoint so every thread piles up behind the lock
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(tokens.refresh(stale))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    fake.gate.set()
    for thread in threads:
        thread.join(5)
    tokens.close()
    assert results == ["access-2"] * 8
    assert len(fake.forms) == 2  # the first access token, then exactly one refresh


def test_token_set_repr_and_store_errors_hide_secrets(store) -> None:
    tokens = TokenSet("BQ-very-secret", "AQ-very-secret", 1.0, 0.0)
    assert "secret" not in repr(tokens)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AuthError, match="unreadable"):
        store.load()
    assert store.delete()
    assert not store.delete()


def _browser(visited: list[str]) -> Any:
    def open_url(url: str) -> None:
        visited.append(url)
        with httpx2.Client(follow_redirects=True, timeout=10) as http:
            page = http.get(url)
        assert page.status_code == 200, page.text

    return open_url


def test_login_completes_against_the_sandbox(sandbox: Sandbox, store) -> None:
    visited: list[str] = []
    tokens = login(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        authorize_url=sandbox.authorize_url,
        token_url=sandbox.token_url,
        store=store,
        port=0,
        open_url=_browser(visited),
        echo=lambda _: None,
        timeout=10,
    )
    query = parse_qs(urlsplit(visited[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["redirect_uri"][0].endswith("/callback")
    assert "state" in query
    assert tokens.access_token is not None
    assert sandbox.accounts.check_bearer(f"Bearer {tokens.access_token}") == tokens.access_token
    assert store.load() == tokens
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_login_ignores_a_callback_with_the_wrong_state(sandbox: Sandbox, store) -> None:
    def open_url(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        forged = httpx2.get(f"{redirect}?code=stolen&state=wrong", timeout=5)
        assert forged.status_code == 400
        _browser([])(url)

    tokens = login(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        authorize_url=sandbox.authorize_url,
        token_url=sandbox.token_url,
        store=store,
        port=0,
        open_url=open_url,
        echo=lambda _: None,
        timeout=10,
    )
    assert tokens.refresh_token is not None


def test_login_refused_in_the_browser_is_an_auth_error(store) -> None:
    def deny(url: str) -> None:
        query = parse_qs(urlsplit(url).query)
        target = f"{query['redirect_uri'][0]}?error=access_denied&state={query['state'][0]}"
        assert httpx2.get(target, timeout=5).status_code == 400

    with pytest.raises(AuthError, match="access_denied"):
        login(
            client_id="cid",
            client_secret="csecret",
            authorize_url="http://127.0.0.1:9/authorize",
            token_url="http://127.0.0.1:9/api/token",
            store=store,
            port=0,
            open_url=deny,
            echo=lambda _: None,
            timeout=10,
        )
    assert store.load() is None


def test_login_times_out_without_a_callback(store) -> None:
    with pytest.raises(AuthError, match="timed out"):
        login(
            client_id="cid",
            client_secret="csecret",
            authorize_url="http://127.0.0.1:9/authorize",
            token_url="http://127.0.0.1:9/api/token",
            store=store,
            port=0,
            echo=lambda _: None,
            timeout=0.2,
        )


def test_a_dead_stored_token_falls_back_to_the_environment_once(clock, store) -> None:
    store.save(TokenSet(None, "stored-dead", 0.0, 0.0))

    def accounts(request: httpx2.Request) -> httpx2.Response:
        form = parse_qs(request.content.decode())
        if form["refresh_token"] == ["from-env"]:
            return httpx2.Response(200, json={"access_token": "fresh", "expires_in": 3600})
        return httpx2.Response(400, json={"error": "invalid_grant"})

    tokens = OAuthSession(
        client_id="cid",
        client_secret="csecret",
        token_url=TOKEN_URL,
        store=store,
        refresh_token="from-env",
        transport=httpx2.MockTransport(accounts),
        clock=clock,
    )
    assert tokens.access_token() == "fresh"
    tokens.close()
    saved = store.load()
    assert saved is not None
    assert saved.refresh_token == "from-env"
    both_dead = session(
        FakeAccounts(answer=httpx2.Response(400, json={"error": "invalid_grant"})),
        clock,
        store,
        refresh_token="x",
    )
    clock.advance(4000)  # the saved access token expires: refresh, with two dead tokens
    with pytest.raises(AuthError, match="invalid_grant"):
        both_dead.access_token()
    both_dead.close()


# --- where a rotated refresh token goes (#14) -------------------------------------------------
class MemorySink:
    """A TokenSink in memory; ``durable`` as a state database is; ``fail`` refuses saves."""

    def __init__(self, *, durable: bool = True, fail: bool = False) -> None:
        self.durable, self.fail = durable, fail
        self.saved: list[TokenSet] = []

    def describe(self) -> str:
        return "the memory sink"

    def load(self) -> TokenSet | None:
        return self.saved[-1] if self.saved else None

    def save(self, tokens: TokenSet) -> None:
        if self.fail:
            raise ConfigError("SPOTIFY_ADS_TOKEN_KEY is not set")
        self.saved.append(tokens)


@pytest.fixture
def unwritable(tmp_path: Path) -> TokenStore:
    """A token file whose folder is a file: no save can succeed, even as root."""
    (tmp_path / "blocker").write_text("")
    return TokenStore(tmp_path / "blocker" / "tokens.json")


def test_a_rotated_token_that_reaches_no_store_stops_the_run(clock, unwritable) -> None:
    tokens = session(FakeAccounts(rotate=True), clock, unwritable, refresh_token="refresh-0")
    with pytest.raises(TokenNotPersistedError) as caught:
        tokens.access_token()
    message = str(caught.value)
    assert message.startswith(
        f"Spotify rotated the refresh token and it could not be persisted (the token file "
        f"{unwritable.path}: "
    )
    assert "stopped before any write to Spotify" in message
    assert "SPOTIFY_ADS_STATE_URL=postgresql://... with SPOTIFY_ADS_TOKEN_KEY" in message
    assert "refresh-1" not in message
    assert caught.value.exit_code == 74
    tokens.close()


def test_a_token_that_did_not_rotate_may_stay_unsaved(clock, unwritable) -> None:
    tokens = session(FakeAccounts(rotate=False), clock, unwritable, refresh_token="keep-me")
    assert tokens.access_token() == "access-1"  # nothing was lost: the old token still works
    assert tokens.refreshes[-1].rotated is False
    assert tokens.refreshes[-1].saved == []
    tokens.close()


def test_a_configured_durable_sink_must_receive_a_rotated_token(clock, store) -> None:
    failing = MemorySink(fail=True)
    tokens = session(FakeAccounts(), clock, store, sinks=[failing], refresh_token="refresh-0")
    with pytest.raises(TokenNotPersistedError, match="the memory sink: SPOTIFY_ADS_TOKEN_KEY"):
        tokens.access_token()  # the token file alone may be a container's scratch disk
    tokens.close()


def test_a_rotated_token_goes_to_every_sink_and_the_session_says_where(clock, store) -> None:
    sink = MemorySink()
    tokens = session(FakeAccounts(), clock, store, sinks=[sink], refresh_token="refresh-0")
    tokens.access_token()
    assert sink.saved[-1].refresh_token == "refresh-1"
    assert store.load() == sink.saved[-1]
    refresh = tokens.refreshes[-1]
    assert refresh.rotated
    assert refresh.saved == [f"the token file {store.path}", "the memory sink"]
    assert refresh.failed == []
    tokens.close()


def test_the_newest_stored_token_wins(clock, store) -> None:
    store.save(TokenSet(None, "refresh-old", 0.0, 100.0))
    sink = MemorySink()
    sink.save(TokenSet(None, "refresh-new", 0.0, 200.0))  # rotated by another machine
    fake = FakeAccounts()
    tokens = session(fake, clock, store, sinks=[sink], refresh_token="refresh-env")
    tokens.access_token()
    assert fake.forms[0]["refresh_token"] == "refresh-new"
    tokens.close()


def test_a_token_rotated_meanwhile_by_another_run_is_picked_up(clock, store) -> None:
    """Two machines read the same stored token; the second refresh finds it used up."""
    sink = MemorySink()
    sink.save(TokenSet(None, "refresh-a", 0.0, 100.0))
    valid = {"refresh-a"}

    def accounts(request: httpx2.Request) -> httpx2.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form["refresh_token"] not in valid:
            return httpx2.Response(400, json={"error": "invalid_grant"})
        valid.discard(form["refresh_token"])
        valid.add(new := f"refresh-{len(valid) + 10}")
        return httpx2.Response(200, json={"access_token": "acc", "refresh_token": new})

    tokens = OAuthSession(
        client_id="cid",
        client_secret="csecret",
        token_url=TOKEN_URL,
        sinks=[sink],
        transport=httpx2.MockTransport(accounts),
        clock=clock,
    )
    # Meanwhile another run used refresh-a, got refresh-b and stored it.
    valid.clear()
    valid.add("refresh-b")
    sink.save(TokenSet(None, "refresh-b", 0.0, 150.0))
    assert tokens.access_token() == "acc"
    assert sink.saved[-1].refresh_token not in ("refresh-a", "refresh-b")
    tokens.close()


# --- a stored login goes only to its issuer (#26.1) -------------------------------------------
def test_a_stored_login_is_never_sent_to_another_token_endpoint(clock, store) -> None:
    store.save(TokenSet("BQ-live", "AQ-real", 0.0, 0.0, token_url=TOKEN_URL))
    fake = FakeAccounts()
    with pytest.raises(AuthError) as caught:
        OAuthSession(
            client_id="cid",
            client_secret="csecret",
            token_url="http://127.0.0.1:18799/api/token",  # what a planted .env would say
            store=store,
            transport=httpx2.MockTransport(fake),
            clock=clock,
        ).force_refresh()
    assert fake.forms == []  # stopped before any request
    assert caught.value.exit_code == 77
    assert f"was issued by {TOKEN_URL}" in str(caught.value)
    assert "log in again against http://127.0.0.1:18799/api/token" in str(caught.value)


# --- many runs, one login (#25) ---------------------------------------------------------------
def test_a_live_token_stored_by_another_run_is_reused_not_refreshed(clock, store) -> None:
    fake = FakeAccounts()
    first = session(fake, clock, store, refresh_token="refresh-0")
    second = session(fake, clock, store, refresh_token="refresh-0")  # started at the same time
    assert first.access_token() == "access-1"
    assert second.access_token() == "access-1"  # found in the store under its lock
    assert len(fake.forms) == 1
    clock.advance(3600)  # both expire; the first to ask refreshes, the other reuses
    assert second.access_token() == "access-2"
    assert first.access_token() == "access-2"
    assert [f["refresh_token"] for f in fake.forms] == ["refresh-0", "refresh-1"]
    first.close()
    second.close()


def test_a_short_lived_token_is_refreshed_ahead_by_a_quarter_of_its_life(clock, store) -> None:
    fake = FakeAccounts()
    fake.answer = httpx2.Response(200, json={"access_token": "short", "expires_in": 8})
    tokens = session(fake, clock, store, refresh_token="refresh-0")
    assert tokens.access_token() == "short"
    clock.advance(5.9)  # 2.1 s left: more than the 2 s margin
    assert tokens.access_token() == "short"
    assert len(fake.forms) == 1
    clock.advance(0.2)
    tokens.access_token()
    assert len(fake.forms) == 2
    tokens.close()


def test_a_refused_token_that_is_still_the_stored_one_is_final(clock, store) -> None:
    store.save(TokenSet(None, "refresh-dead", 0.0, 100.0))
    answer = httpx2.Response(400, json={"error": "invalid_grant"})
    fake = FakeAccounts(answer=answer)
    tokens = session(fake, clock, store)
    with pytest.raises(AuthError, match="invalid_grant") as caught:
        tokens.access_token()
    assert caught.value.exit_code == 77
    assert len(fake.forms) == 1  # no retry loop against a token that is truly dead
    tokens.close()


def test_refusals_of_ever_newer_stored_tokens_are_bounded(clock, store) -> None:
    """A store that changes after every refusal (a run without the lock, rotating away)."""
    store.save(TokenSet(None, "refresh-0", 0.0, 100.0))
    forms: list[str] = []

    def accounts(request: httpx2.Request) -> httpx2.Response:
        forms.append(parse_qs(request.content.decode())["refresh_token"][0])
        store.save(TokenSet(None, f"refresh-{len(forms)}", 0.0, 100.0 + len(forms)))
        return httpx2.Response(400, json={"error": "invalid_grant"})

    tokens = OAuthSession(
        client_id="cid",
        client_secret="csecret",
        token_url=TOKEN_URL,
        store=store,
        transport=httpx2.MockTransport(accounts),
        clock=clock,
    )
    with pytest.raises(AuthError, match="kept refusing"):
        tokens.access_token()
    assert len(forms) == OAuthSession.MAX_ADOPTIONS + 1
    tokens.close()
