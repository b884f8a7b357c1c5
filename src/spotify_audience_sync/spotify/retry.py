"""The one HTTP retry policy, for the Ads API client and the resumable GCS upload alike.

It owns three decisions and nothing else (no I/O, no sleeping: callers sleep):

* :func:`classify` — what an answer (or a transport failure) means: done, send again, a refusal
  that retrying will not fix, or a write whose outcome is unknown. The one status table, in the
  spirit of the Singer SDK's ``validate_response``:

  ======================================  ==================  ======================
  answer                                  resendable request  write (not resendable)
  ======================================  ==================  ======================
  < 400                                   OK                  OK
  408, 429 (not processed by the server)  RETRY               RETRY
  other 4xx                               FATAL               FATAL
  5xx                                     RETRY               UNKNOWN
  failed to connect (nothing was sent)    RETRY               RETRY
  other transport failure (timeout, …)    RETRY               UNKNOWN
  ======================================  ==================  ======================

  A request is *resendable* when sending it twice does no harm: a GET, or an upload request
  that the resumable protocol makes safe to repeat.
* :func:`retry_after` — how long a 429 asks us to wait: ``Retry-After`` in seconds or as an
  HTTP date, else ``X-RateLimit-Reset`` in seconds.
* :class:`RetryPolicy` — how many sends, exponential backoff with *equal jitter* (half the
  step fixed, half random, so a retry never fires at once), and the longest wait a server may
  ask for before the call fails instead of hanging the sync.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2

__all__ = ["NOT_SENT", "RetryPolicy", "Verdict", "classify", "retry_after"]

NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
"""Transport failures before any byte left: safe to resend whatever the method."""

_NOT_PROCESSED = frozenset({408, 429})
"""Statuses that say the server did not act on the request, so any method may be resent."""


class Verdict(enum.Enum):
    """What to do with one answer."""

    OK = "ok"
    """A success (or a 3xx the caller handles itself)."""
    RETRY = "retry"
    """Send again after a wait, while the policy allows."""
    FATAL = "fatal"
    """A refusal that retrying will not fix: map it to an error now."""
    UNKNOWN = "unknown"
    """A write was answered 5xx or not at all: it may have landed. Never resend blindly."""


def classify(outcome: httpx2.Response | httpx2.TransportError, *, resendable: bool) -> Verdict:
    """The status table above, in one place: the caller maps the verdict to its own errors."""
    if isinstance(outcome, httpx2.TransportError):
        if resendable or isinstance(outcome, NOT_SENT):
            return Verdict.RETRY
        return Verdict.UNKNOWN
    status = outcome.status_code
    if status < 400:
        return Verdict.OK
    if status in _NOT_PROCESSED:
        return Verdict.RETRY
    if status >= 500:
        return Verdict.RETRY if resendable else Verdict.UNKNOWN
    return Verdict.FATAL


def _seconds(value: str | None, now: Callable[[], float]) -> float | None:
    """A header value as seconds from now: a number of seconds or an HTTP date; None if neither."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


def retry_after(response: httpx2.Response, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a 429 asks us to wait (``Retry-After``, else ``X-RateLimit-Reset``), or None.

    Other statuses are not asked: a 5xx waits by backoff, whatever its headers say.
    """
    if response.status_code != 429:
        return None
    for header in ("Retry-After", "X-RateLimit-Reset"):
        seconds = _seconds(response.headers.get(header), now)
        if seconds is not None:
            return seconds
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying. ``attempts`` counts every send of one request."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 120.0
    """A server asking us to wait longer than this fails the call instead of hanging."""

    def backoff(self, attempt: int, jitter: float) -> float:
        """The wait after failed send number ``attempt`` (from 1); ``jitter`` is in [0, 1)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return cap / 2 + jitter * cap / 2

    def wait(
        self,
        attempt: int,
        response: httpx2.Response | None,
        jitter: Callable[[], float],
        *,
        now: Callable[[], float] = time.time,
    ) -> float:
        """What a 429 asks for, else the backoff for ``attempt``."""
        asked = retry_after(response, now=now) if response is not None else None
        return asked if asked is not None else self.backoff(attempt, jitter())

    def give_up(self, attempt: int, wait: float) -> str | None:
        """None to wait and send again; else why not, phrased for an error message."""
        if wait > self.max_wait:
            return f"asked to wait {wait:.0f} s"
        if attempt >= self.attempts:
            return f"gave up after {attempt} tries"
        return None
