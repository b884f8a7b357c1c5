"""The bearer layer as a plain ``httpx2.Auth``: header, one refresh after a 401, then AuthError."""

from __future__ import annotations

import httpx2
import pytest

from spotify_audience_sync.errors import AuthError, RemoteError
from spotify_audience_sync.spotify.auth import OAuthSession
from spotify_audience_sync.spotify.bearer import WHAT, BearerAuth, StaticToken, bearer
from spotify_audience_sync.spotify.client import AdsClient
from spotify_audience_sync.spotify.ratelimit import RateLimiter

URL = "https://api-partner.spotify.com/ads/v3/ad_accounts/a/audiences"


class Tokens:
    """A TokenProvider (not an Auth) that counts refreshes and remembers the refused token."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def access_token(self) -> str:
        return "tok-1"

    def refresh(self, stale: str) -> str:
        self.refused.append(stale)
        return f"tok-{len(self.refused) + 1}"


class Server:
    """Answers 401 to every token in ``refuse``; records the Authorization headers seen."""

    def __init__(self, *refuse: str) -> None:
        self.refuse = set(refuse)
        self.seen: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        header = request.headers["Authorization"]
        self.seen.append(header)
        if header.removeprefix("Bearer ") in self.refuse:
            return httpx2.Response(401, json={"sp_trace_id": "trace-9"})
        return httpx2.Response(200, json={"ok": True, "body": request.content.decode()})


def client(server: Server) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(server))


@pytest.mark.parametrize(
    ("refuse", "seen", "refused"),
    [
        pytest.param((), ["Bearer tok-1"], [], id="accepted"),
        pytest.param(("tok-1",), ["Bearer tok-1", "Bearer tok-2"], ["tok-1"], id="refreshed"),
    ],
)
def test_sets_the_header_and_refreshes_once_with_the_refused_token(refuse, seen, refused) -> None:
    server, tokens = Server(*refuse), Tokens()
    with client(server) as http:
        response = http.post(URL, json={"a": 1}, auth=bearer(tokens))
    assert response.status_code == 200
    assert response.json()["body"] == '{"a":1}'  # the resend carries the same body
    assert server.seen == seen
    assert tokens.refused == refused


def test_a_second_401_is_an_auth_error_naming_the_operation_not_the_token() -> None:
    server, tokens = Server("tok-1", "tok-2"), Tokens()
    with client(server) as http, pytest.raises(AuthError) as info:
        http.get(URL, auth=bearer(tokens), extensions={WHAT: "get audience x"})
    assert str(info.value) == (
        "get audience x: Spotify refused the access token even after a refresh "
        "(HTTP 401, sp_trace_id=trace-9); run `spotify-audience-sync auth login`"
    )
    assert len(server.seen) == 2
    assert "tok-" not in str(info.value)


def test_without_a_name_the_operation_is_the_method_and_path() -> None:
    with client(Server("tok-1", "tok-2")) as http, pytest.raises(AuthError, match=r"^GET /ads/v3"):
        http.get(URL, auth=bearer(Tokens()))


def test_a_static_token_is_already_an_auth_and_cannot_refresh() -> None:
    token = StaticToken("fixed")
    assert bearer(token) is token
    assert isinstance(token, BearerAuth)
    with client(Server("fixed")) as http, pytest.raises(AuthError, match="cannot be refreshed"):
        http.get(URL, auth=token)


def test_the_api_client_counts_the_resend_after_a_401_against_the_rate_limit(clock) -> None:
    server = Server("tok-1")
    ads = AdsClient(
        base_url="https://api-partner.spotify.com/ads/v3",
        ad_account_id="a",
        tokens=Tokens(),
        transport=httpx2.MockTransport(server),
        sleep=clock.sleep,
        limiter=RateLimiter(((1, 1.0),), clock=clock, sleep=clock.sleep),
    )
    with ads, pytest.raises(RemoteError, match="unexpected response body"):
        ads.get_audience("x")  # the fake's 200 body is no audience: fine, it got through
    assert server.seen == ["Bearer tok-1", "Bearer tok-2"]
    assert clock.slept == [1.0]  # one request per second: the resend waited for its slot


def test_an_oauth_session_is_an_httpx_auth() -> None:
    assert issubclass(OAuthSession, httpx2.Auth)
