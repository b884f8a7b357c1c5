"""The client-side limiter keeps under 50 requests/s and 1,500 per 30 s (frozen clock)."""

from __future__ import annotations

import pytest

from spotify_audience_sync.spotify.ratelimit import RateLimiter
from spotify_audience_sync.spotify.redact import mask, mask_url


def test_the_51st_request_in_a_second_waits(clock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert sum(limiter.acquire() for _ in range(50)) == 0
    assert limiter.acquire() == pytest.approx(1.0)


def test_the_30_second_window_holds_1500(clock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(1501):
        limiter.acquire()
    # 1,500 fit in 30 s at 50/s; the 1,501st waits for the window's first request to age out
    assert clock.now - start == pytest.approx(30.0)
    assert max(clock.slept) <= 1.0 + 1e-9


def test_custom_windows(clock) -> None:
    limiter = RateLimiter(((2, 10.0),), clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.advance(4)
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(6.0)


def test_masking_keeps_only_a_prefix_and_drops_signatures() -> None:
    assert mask("BQabcdefgh") == "BQab…"
    assert mask(None) == "<none>"
    signed = "https://storage.googleapis.com/bucket/file.csv?X-Goog-Signature=abc123"
    assert mask_url(signed) == "https://storage.googleapis.com/bucket/file.csv?…"
    assert "abc123" not in mask_url(signed)
