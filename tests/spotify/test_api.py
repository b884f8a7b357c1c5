"""AdsClient against a small fake Spotify (httpx2.MockTransport): requests, errors, retries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from spotify_audience_sync.errors import (
    AuthError,
    ConfigError,
    OutcomeUnknownError,
    RemoteError,
    TransientError,
)
from spotify_audience_sync.spotify.client import AdsClient, RetryPolicy, StaticToken
from spotify_audience_sync.spotify.models import AudienceStatus
from spotify_audience_sync.spotify.ratelimit import RateLimiter

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"
AUD = "0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d"
TOKEN = "BQsecret-access-token-value"
PREFIX = f"/ads/v3/ad_accounts/{ACCOUNT}/audiences"


def audience(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": AUD if i == 0 else f"00000000-0000-4000-8000-{i:012d}",
        "name": f"aud {i}",
        "type": "CUSTOM",
        "subtype": "CUSTOMER_LIST",
        "status": "BOOKABLE",
        "size": {"min": 1000, "max": 2000},
        "created_at": "2026-01-23T04:56:07Z",
        "updated_at": "2026-01-23T04:56:07Z",
        **extra,
    }


Reply = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


@dataclass
class FakeSpotify:
    """Answers queued replies per ``METHOD path`` in order; the last one repeats."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[httpx2.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> FakeSpotify:
        self.replies[f"{method} {PREFIX}{path}"] = list(replies)
        return self

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(request)
        queued = self.replies[f"{request.method} {request.url.path}"]
        reply = queued.pop(0) if len(queued) > 1 else queued[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply


class CountingTokens:
    def __init__(self) -> None:
        self.refreshes = 0

    def access_token(self) -> str:
        return TOKEN if not self.refreshes else TOKEN + "-new"

    def refresh(self, stale: str) -> str:
        self.refreshes += 1
        return TOKEN + "-new"


@pytest.fixture
def fake() -> FakeSpotify:
    return FakeSpotify()


@pytest.fixture
def make_client(fake: FakeSpotify, clock: Any) -> Callable[..., AdsClient]:
    def build(tokens: Any = None, **kwargs: Any) -> AdsClient:
        return AdsClient(
            base_url="https://api-partner.spotify.com/ads/v3",
            ad_account_id=ACCOUNT,
            tokens=tokens or StaticToken(TOKEN),
            transport=httpx2.MockTransport(fake),
            sleep=clock.sleep,
            jitter=lambda: 1.0,
            limiter=RateLimiter(clock=clock, sleep=clock.sleep),
            **kwargs,
        )

    return build


def error(status: int, key: str = "error_codes", **headers: str) -> httpx2.Response:
    body = {
        "sp_trace_id": "trace-123",
        "messages": ["nope"],
        key: [{"code": "BAD", "definition": "d"}],
    }
    return httpx2.Response(status, json=body, headers=headers)


def test_create_sends_the_contract_body_and_parses_the_audience(fake, make_client) -> None:
    fake.on("POST", "", httpx2.Response(201, json=audience(status="PROCESSING")))
    with make_client() as client:
        created = client.create_audience("My list", "desc", AUD)
    sent = json.loads(fake.seen[0].content)
    assert sent == {
        "audience_type": "CUSTOM",
        "subtype": "CUSTOMER_LIST",
        "name": "My list",
        "description": "desc",
        "audience_id": AUD,
    }
    assert fake.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert created.status == AudienceStatus.PROCESSING
    assert created.created_at is not None
    assert created.created_at.year == 2026


def test_upload_urls_use_literal_routes_and_mask_the_signature(fake, make_client) -> None:
    url = "https://storage.googleapis.com/b/o.csv?X-Goog-Signature=deadbeefcafe"
    fake.on("POST", "/upload_url", httpx2.Response(200, json={"id": AUD, "upload_url": url}))
    fake.on("POST", f"/upload_url/{AUD}", httpx2.Response(200, json={"id": AUD, "upload_url": url}))
    with make_client() as client:
        new = client.new_upload_url()
        again = client.replacement_upload_url(AUD)
    assert new.upload_url == url
    assert again.id == AUD
    assert "deadbeef" not in repr(new)
    assert "deadbeef" not in str(again)


def test_list_fetches_every_page(fake, make_client) -> None:
    def page(request: httpx2.Request) -> httpx2.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        items = [audience(i) for i in range(offset + 1, min(offset + limit, 5) + 1)]
        paging = {"page_size": limit, "total_results": 5, "offset": offset}
        return httpx2.Response(200, json={"paging": paging, "audiences": items})

    fake.on("GET", "", page)
    with make_client() as client:
        found = list(client.list_audiences(q="aud", page_size=2))
    assert [a.name for a in found] == [f"aud {i}" for i in range(1, 6)]
    assert [r.url.params["offset"] for r in fake.seen] == ["0", "2", "4"]
    assert all(r.url.params["q"] == "aud" for r in fake.seen)


def test_list_stops_on_an_empty_page_without_total(fake, make_client) -> None:
    fake.on(
        "GET",
        "",
        httpx2.Response(200, json={"paging": {}, "audiences": [audience(1)]}),
        httpx2.Response(200, json={"paging": {}, "audiences": []}),
    )
    with make_client() as client:
        assert len(list(client.list_audiences())) == 1
    assert len(fake.seen) == 2


def test_edit_always_sends_audience_type(fake, make_client) -> None:
    fake.on("PATCH", f"/{AUD}", httpx2.Response(200, json=audience(name="renamed")))
    with make_client() as client:
        assert client.edit_audience(AUD, name="renamed").name == "renamed"
    assert json.loads(fake.seen[0].content) == {"audience_type": "CUSTOM", "name": "renamed"}


def test_delete_returns_the_deletion_count(fake, make_client) -> None:
    fake.on("DELETE", f"/{AUD}", httpx2.Response(200, json={"deletion_count": 1}))
    with make_client() as client:
        assert client.delete_audience(AUD) == 1


@pytest.mark.parametrize("key", ["error_codes", "errorCodes"])
def test_errors_are_parsed_tolerantly(fake, make_client, key: str) -> None:
    fake.on("GET", f"/{AUD}", error(404, key))
    with make_client() as client, pytest.raises(RemoteError) as info:
        client.get_audience(AUD)
    assert info.value.status == 404
    assert info.value.trace_id == "trace-123"
    assert info.value.codes == ("BAD",)
    assert "nope" in str(info.value)
    assert "trace-123" in str(info.value)


def test_non_json_error_body_still_gives_a_remote_error(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", httpx2.Response(400, text="<html>bad</html>"))
    with make_client() as client, pytest.raises(RemoteError, match="HTTP 400: Bad Request"):
        client.get_audience(AUD)


def test_forbidden_is_a_remote_error_with_a_hint(fake, make_client) -> None:
    fake.on("POST", "/upload_url", error(403))
    with make_client() as client, pytest.raises(RemoteError, match="terms") as info:
        client.new_upload_url()
    assert info.value.status == 403
    assert not isinstance(info.value, AuthError)


def test_conflict_on_delete_of_a_live_audience(fake, make_client) -> None:
    fake.on("DELETE", f"/{AUD}", error(409))
    with make_client() as client, pytest.raises(RemoteError) as info:
        client.delete_audience(AUD)
    assert info.value.status == 409


def test_429_is_retried_for_post_after_retry_after(fake, make_client, clock) -> None:
    fake.on("POST", "", error(429, **{"Retry-After": "3"}), httpx2.Response(201, json=audience()))
    with make_client() as client:
        client.create_audience("name", None, AUD)
    assert len(fake.seen) == 2
    assert clock.slept == [3.0]


def test_429_falls_back_to_rate_limit_reset_then_backoff(fake, make_client, clock) -> None:
    fake.on(
        "GET",
        f"/{AUD}",
        error(429, **{"X-RateLimit-Reset": "7"}),
        error(429),
        httpx2.Response(200, json=audience()),
    )
    with make_client() as client:
        client.get_audience(AUD)
    assert clock.slept == [7.0, 1.0]  # then backoff: 0.5 * 2**1 with jitter=1.0


def test_a_429_storm_ends_in_a_transient_error(fake, make_client, clock) -> None:
    fake.on("GET", f"/{AUD}", error(429, **{"Retry-After": "1"}))
    client = make_client(retry=RetryPolicy(attempts=4))
    with client, pytest.raises(TransientError, match="gave up after 4 tries"):
        client.get_audience(AUD)
    assert len(fake.seen) == 4
    assert clock.slept == [1.0, 1.0, 1.0]


def test_a_retry_after_beyond_the_limit_fails_without_waiting(fake, make_client, clock) -> None:
    fake.on("GET", f"/{AUD}", error(429, **{"Retry-After": "3600"}))
    with make_client() as client, pytest.raises(TransientError, match="asked to wait 3600 s"):
        client.get_audience(AUD)
    assert clock.slept == []


def test_get_is_retried_on_5xx_with_exponential_backoff(fake, make_client, clock) -> None:
    fake.on("GET", f"/{AUD}", error(503), error(502), httpx2.Response(200, json=audience()))
    with make_client() as client:
        assert client.get_audience(AUD).id == AUD
    assert clock.slept == [0.5, 1.0]


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_writes_are_never_retried_after_an_ambiguous_5xx(fake, make_client, method) -> None:
    fake.on(method, f"/{AUD}" if method != "POST" else "", error(503))
    client = make_client()
    calls = {
        "POST": lambda: client.create_audience("name", None, AUD),
        "PATCH": lambda: client.edit_audience(AUD, name="xx"),
        "DELETE": lambda: client.delete_audience(AUD),
    }
    with client, pytest.raises(TransientError, match="outcome unknown"):
        calls[method]()
    assert len(fake.seen) == 1


def test_a_post_answered_503_is_outcome_unknown_and_sent_once(fake, make_client) -> None:
    fake.on("POST", "", error(503))
    with make_client() as client, pytest.raises(OutcomeUnknownError) as info:
        client.create_audience("name", None, AUD)
    assert len(fake.seen) == 1
    assert (info.value.status, info.value.method) == (503, "POST")
    assert info.value.to_dict()["outcome"] == "unknown"
    assert "outcome unknown" in str(info.value)
    assert TOKEN not in str(info.value)


def test_a_get_answered_503_is_retried_not_outcome_unknown(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", error(503), httpx2.Response(200, json=audience()))
    with make_client() as client:
        assert client.get_audience(AUD).id == AUD
    assert len(fake.seen) == 2


def test_a_get_whose_503s_outlive_the_retries_is_a_plain_transient_error(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", error(503))
    client = make_client(retry=RetryPolicy(attempts=3))
    with client, pytest.raises(TransientError, match="gave up after 3 tries") as info:
        client.get_audience(AUD)
    assert not isinstance(info.value, OutcomeUnknownError)
    assert len(fake.seen) == 3


def test_a_write_that_timed_out_after_sending_is_outcome_unknown(fake, make_client) -> None:
    fake.on("PATCH", f"/{AUD}", httpx2.ReadTimeout("slow"))
    with make_client() as client, pytest.raises(OutcomeUnknownError) as info:
        client.edit_audience(AUD, name="renamed")
    assert len(fake.seen) == 1
    assert (info.value.status, info.value.method) == (None, "PATCH")
    assert "outcome is unknown" in str(info.value)


def test_writes_are_never_retried_after_a_read_timeout(fake, make_client) -> None:
    fake.on("POST", "/upload_url", httpx2.ReadTimeout("slow"))
    with make_client() as client, pytest.raises(TransientError, match="not retried"):
        client.new_upload_url()
    assert len(fake.seen) == 1


def test_get_is_retried_after_a_dropped_connection(fake, make_client) -> None:
    fake.on(
        "GET", f"/{AUD}", httpx2.RemoteProtocolError("gone"), httpx2.Response(200, json=audience())
    )
    with make_client() as client:
        assert client.get_audience(AUD).id == AUD
    assert len(fake.seen) == 2


def test_a_failed_connect_is_retried_for_any_method(fake, make_client) -> None:
    body = {"id": AUD, "upload_url": "https://storage.googleapis.com/b/y"}
    fake.on("POST", "/upload_url", httpx2.ConnectError("refused"), httpx2.Response(200, json=body))
    with make_client() as client:
        assert client.new_upload_url().id == AUD


def test_401_refreshes_once_and_resends(fake, make_client) -> None:
    tokens = CountingTokens()
    fake.on("POST", "", error(401), httpx2.Response(201, json=audience()))
    with make_client(tokens=tokens) as client:
        client.create_audience("name", None, AUD)
    assert tokens.refreshes == 1
    assert fake.seen[1].headers["Authorization"] == f"Bearer {TOKEN}-new"


def test_401_after_the_refresh_is_an_auth_error(fake, make_client) -> None:
    tokens = CountingTokens()
    fake.on("GET", f"/{AUD}", error(401))
    with make_client(tokens=tokens) as client, pytest.raises(AuthError, match="auth login"):
        client.get_audience(AUD)
    assert tokens.refreshes == 1
    assert len(fake.seen) == 2


def test_static_token_cannot_be_refreshed(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", error(401))
    with make_client() as client, pytest.raises(AuthError):
        client.get_audience(AUD)


def test_tokens_never_reach_logs_or_errors(fake, make_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.on("GET", f"/{AUD}", httpx2.ReadTimeout("slow"), error(500))
    client = make_client(retry=RetryPolicy(attempts=2))
    with client, pytest.raises(TransientError) as info:
        client.get_audience(AUD)
    assert caplog.records
    assert "secret" not in caplog.text
    assert "secret" not in str(info.value)


def test_unexpected_success_body_is_a_remote_error(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", httpx2.Response(200, json={"name": "no id"}))
    with make_client() as client, pytest.raises(RemoteError, match="unexpected response"):
        client.get_audience(AUD)


@pytest.mark.parametrize(
    ("name", "description"),
    [pytest.param("x", None, id="name-short"), pytest.param("ok name", "d" * 81, id="desc-long")],
)
def test_names_are_checked_before_sending(fake, make_client, name, description) -> None:
    with make_client() as client, pytest.raises(ConfigError):
        client.create_audience(name, description, AUD)
    assert fake.seen == []


def test_unknown_statuses_still_parse(fake, make_client) -> None:
    fake.on("GET", f"/{AUD}", httpx2.Response(200, json=audience(status="NEW_STATE", extra=1)))
    with make_client() as client:
        found = client.get_audience(AUD)
    assert found.status == "NEW_STATE"
    assert not found.settled


# --- hostile answers: hosts, ids, endless pages, unbounded bodies -------------------------------
@pytest.mark.parametrize(
    ("upload_url", "allowed", "extra"),
    [
        pytest.param("https://storage.googleapis.com/b/o?X-Goog-Signature=s", True, (), id="gcs"),
        pytest.param("https://bkt.storage.googleapis.com/o?sig=s", True, (), id="gcs-bucket-host"),
        pytest.param("http://storage.googleapis.com/b/o?sig=s", False, (), id="gcs-plain-http"),
        pytest.param("https://storage.googleapis.com:8443/b/o", False, (), id="gcs-other-port"),
        pytest.param("https://storage.googleapis.com.evil.test/o", False, (), id="suffix-trick"),
        pytest.param("http://evil.test/o?X-Goog-Signature=s3cr3t", False, (), id="foreign-http"),
        pytest.param(
            "https://up.example.com/o?sig=s", True, ("https://up.example.com",), id="listed"
        ),
    ],
)
def test_an_upload_url_must_point_at_google_or_a_listed_origin(
    fake, make_client, upload_url: str, allowed: bool, extra: tuple[str, ...]
) -> None:
    fake.on("POST", "/upload_url", httpx2.Response(200, json={"id": AUD, "upload_url": upload_url}))
    with make_client(upload_origins=extra) as client:
        if allowed:
            assert client.new_upload_url().upload_url == upload_url
            return
        with pytest.raises(RemoteError, match="not at Google Cloud Storage") as info:
            client.new_upload_url()
    assert info.value.exit_code == 69
    assert "?" not in str(info.value), "the host only, never the query"
    assert "s3cr3t" not in str(info.value)


def test_the_sandbox_origin_is_allowed_when_it_is_the_api_base(fake, clock) -> None:
    url = "http://127.0.0.1:8765/upload/x.csv?X-Goog-Signature=s"
    fake.replies["POST /ads/v3/ad_accounts/" + ACCOUNT + "/audiences/upload_url"] = [
        httpx2.Response(200, json={"id": AUD, "upload_url": url})
    ]
    with AdsClient(
        base_url="http://127.0.0.1:8765/ads/v3",
        ad_account_id=ACCOUNT,
        tokens=StaticToken(TOKEN),
        transport=httpx2.MockTransport(fake),
        sleep=clock.sleep,
    ) as client:
        assert client.new_upload_url().upload_url == url


@pytest.mark.parametrize(
    "bad_id", ["../../../../x/escaped", "", "a1", "0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d/.."]
)
def test_every_id_in_an_answer_must_be_a_uuid(fake, make_client, bad_id: str) -> None:
    url = "https://storage.googleapis.com/b/o"
    fake.on("POST", "/upload_url", httpx2.Response(200, json={"id": bad_id, "upload_url": url}))
    fake.on("POST", "", httpx2.Response(201, json=audience(id=bad_id)))
    fake.on("GET", "", httpx2.Response(200, json={"audiences": [audience(id=bad_id)]}))
    with make_client() as client:
        for call in (
            client.new_upload_url,
            lambda: client.create_audience("name", None, AUD),
            lambda: list(client.list_audiences()),
        ):
            with pytest.raises(RemoteError, match=r"id: Value error, not a UUID") as info:
                call()
            assert info.value.exit_code == 69
            if bad_id:
                assert bad_id not in str(info.value)


def test_a_list_that_repeats_its_page_stops(fake, make_client) -> None:
    page = {"paging": {}, "audiences": [audience(1), audience(2)]}
    fake.on("GET", "", httpx2.Response(200, json=page))
    with make_client() as client, pytest.raises(RemoteError, match="repeats an earlier page"):
        list(client.list_audiences(page_size=2))
    assert len(fake.seen) == 2


def test_a_list_past_its_total_stops(fake, make_client) -> None:
    def page(request: httpx2.Request) -> httpx2.Response:
        offset = int(request.url.params["offset"])
        items = [audience(offset + 1)]
        total = 1 if offset else 2  # announces 2, then, past it, keeps sending
        return httpx2.Response(200, json={"paging": {"total_results": total}, "audiences": items})

    fake.on("GET", "", page)
    with make_client() as client, pytest.raises(RemoteError, match="past the 1 audiences"):
        list(client.list_audiences(page_size=1))


def test_a_list_that_never_ends_stops_at_the_page_cap(
    fake, make_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spotify_audience_sync.spotify import client as client_module

    monkeypatch.setattr(client_module, "MAX_PAGES", 5)

    def page(request: httpx2.Request) -> httpx2.Response:
        offset = int(request.url.params["offset"])
        return httpx2.Response(200, json={"audiences": [audience(offset + 1)]})

    fake.on("GET", "", page)
    with make_client() as client, pytest.raises(RemoteError, match="after 5 pages"):
        list(client.list_audiences(page_size=1))
    assert len(fake.seen) == 6


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_answer_larger_than_the_cap_is_refused(fake, make_client, declared: bool) -> None:
    body = b'{"id": "' + AUD.encode() + b'", "name": "' + b"x" * (5 << 20) + b'"}'
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    reply = (
        httpx2.Response(200, content=body, headers={"content-type": "application/json"})
        if declared
        else httpx2.Response(200, content=iter(chunks))
    )
    fake.on("GET", f"/{AUD}", reply)
    with make_client() as client, pytest.raises(RemoteError, match="larger than 4 MB") as info:
        client.get_audience(AUD)
    assert info.value.exit_code == 69


def test_a_gzip_bomb_answer_is_refused(fake, make_client) -> None:
    import gzip

    bomb = gzip.compress(b" " * (64 << 20))
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    fake.on("GET", f"/{AUD}", httpx2.Response(200, content=bomb, headers=headers))
    with make_client() as client, pytest.raises(RemoteError, match="larger than 4 MB"):
        client.get_audience(AUD)
