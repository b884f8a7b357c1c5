"""The one HTTP retry policy: the status table, Retry-After parsing, backoff and give-up."""

from __future__ import annotations

import httpx2
import pytest

from spotify_audience_sync.spotify.retry import RetryPolicy, Verdict, classify, retry_after

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, a frozen clock


def now() -> float:
    return NOW


def answer(status: int, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, headers=headers)


@pytest.mark.parametrize(
    ("outcome", "resendable", "verdict"),
    [
        pytest.param(answer(200), False, Verdict.OK, id="200"),
        pytest.param(answer(201), False, Verdict.OK, id="201"),
        pytest.param(answer(308), True, Verdict.OK, id="308-resume"),
        pytest.param(answer(400), True, Verdict.FATAL, id="400"),
        pytest.param(answer(401), True, Verdict.FATAL, id="401-left-to-auth"),
        pytest.param(answer(403), True, Verdict.FATAL, id="403"),
        pytest.param(answer(404), True, Verdict.FATAL, id="404"),
        pytest.param(answer(409), False, Verdict.FATAL, id="409"),
        pytest.param(answer(408), False, Verdict.RETRY, id="408-write"),
        pytest.param(answer(429), False, Verdict.RETRY, id="429-write"),
        pytest.param(answer(429), True, Verdict.RETRY, id="429-read"),
        pytest.param(answer(500), True, Verdict.RETRY, id="500-read"),
        pytest.param(answer(503), True, Verdict.RETRY, id="503-read"),
        pytest.param(answer(503), False, Verdict.UNKNOWN, id="503-write"),
        pytest.param(answer(504), False, Verdict.UNKNOWN, id="504-write"),
        pytest.param(httpx2.ConnectError("refused"), False, Verdict.RETRY, id="connect-write"),
        pytest.param(httpx2.ConnectTimeout("slow"), False, Verdict.RETRY, id="connect-timeout"),
        pytest.param(httpx2.PoolTimeout("busy"), False, Verdict.RETRY, id="pool-timeout"),
        pytest.param(httpx2.ReadTimeout("slow"), False, Verdict.UNKNOWN, id="read-timeout-write"),
        pytest.param(httpx2.ReadTimeout("slow"), True, Verdict.RETRY, id="read-timeout-read"),
        pytest.param(httpx2.RemoteProtocolError("x"), False, Verdict.UNKNOWN, id="dropped-write"),
        pytest.param(httpx2.RemoteProtocolError("x"), True, Verdict.RETRY, id="dropped-read"),
    ],
)
def test_classify(outcome, resendable: bool, verdict: Verdict) -> None:
    assert classify(outcome, resendable=resendable) is verdict


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"Retry-After": "3"}, 3.0, id="seconds"),
        pytest.param({"Retry-After": "2.5"}, 2.5, id="fraction"),
        pytest.param({"Retry-After": "-4"}, 0.0, id="negative-is-zero"),
        pytest.param({"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}, 30.0, id="http-date"),
        pytest.param({"Retry-After": "Wed, 31 Dec 2025 23:59:00 GMT"}, 0.0, id="date-passed"),
        pytest.param({"X-RateLimit-Reset": "7"}, 7.0, id="rate-limit-reset"),
        pytest.param({"Retry-After": "2", "X-RateLimit-Reset": "9"}, 2.0, id="retry-after-wins"),
        pytest.param({"Retry-After": "soon", "X-RateLimit-Reset": "9"}, 9.0, id="garbage-falls"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_retry_after_of_a_429(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(answer(429, **headers), now=now) == seconds


def test_retry_after_is_only_asked_of_a_429() -> None:
    assert retry_after(answer(503, **{"Retry-After": "3"}), now=now) is None


@pytest.mark.parametrize(
    ("policy", "attempt", "jitter", "seconds"),
    [
        pytest.param(RetryPolicy(), 1, 0.0, 0.25, id="first-no-jitter"),
        pytest.param(RetryPolicy(), 1, 1.0, 0.5, id="first-full-jitter"),
        pytest.param(RetryPolicy(), 2, 1.0, 1.0, id="doubles"),
        pytest.param(RetryPolicy(), 3, 0.5, 1.5, id="half-jitter"),
        pytest.param(RetryPolicy(), 20, 1.0, 30.0, id="capped"),
        pytest.param(RetryPolicy(), 20, 0.0, 15.0, id="capped-floor"),
        pytest.param(RetryPolicy(base_delay=1.0, max_delay=32.0), 7, 1.0, 32.0, id="upload-cap"),
    ],
)
def test_backoff_has_equal_jitter(
    policy: RetryPolicy, attempt: int, jitter: float, seconds: float
) -> None:
    assert policy.backoff(attempt, jitter) == seconds


def test_wait_prefers_what_a_429_asks_for_and_draws_no_jitter() -> None:
    drawn: list[float] = []

    def jitter() -> float:
        drawn.append(1.0)
        return 1.0

    policy = RetryPolicy()
    assert policy.wait(3, answer(429, **{"Retry-After": "9"}), jitter, now=now) == 9.0
    assert drawn == []
    assert policy.wait(3, answer(503, **{"Retry-After": "9"}), jitter, now=now) == 2.0
    assert policy.wait(2, None, jitter, now=now) == 1.0
    assert drawn == [1.0, 1.0]


@pytest.mark.parametrize(
    ("attempt", "wait", "why"),
    [
        pytest.param(1, 0.5, None, id="go-on"),
        pytest.param(4, 120.0, None, id="at-the-limit"),
        pytest.param(5, 1.0, "gave up after 5 tries", id="out-of-tries"),
        pytest.param(1, 3600.0, "asked to wait 3600 s", id="too-long"),
        pytest.param(5, 3600.0, "asked to wait 3600 s", id="too-long-wins"),
    ],
)
def test_give_up(attempt: int, wait: float, why: str | None) -> None:
    assert RetryPolicy().give_up(attempt, wait) == why
