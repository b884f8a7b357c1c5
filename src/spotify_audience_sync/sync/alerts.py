"""One notification per run that needs a person's eyes: a POST any webhook can take.

Unattended runs (a CDP's container job, a warehouse sync on cron) speak through exit codes
that nobody reads until an audience has gone stale. The body works as a Slack incoming webhook
as it is (``text``: one sentence) and carries the structured fields a Teams/PagerDuty/own
receiver wants. Counts, ids and codes only: the run's facts hold no value and no secret, and the
URL itself (a webhook URL is a credential) is shown by its host alone.

A notification never changes the run's outcome: a failure to deliver it, after a bounded retry,
is returned as a warning for the caller to report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from spotify_audience_sync.errors import EXIT_CODES
from spotify_audience_sync.spotify.redact import mask_url
from spotify_audience_sync.sync.facts import RunFacts

__all__ = ["NotifyOn", "notification", "send_notification", "should_notify"]

log = logging.getLogger(__name__)

NotifyOn = Literal["failure", "warning", "always"]
ATTEMPTS = 3
TIMEOUT = 10.0


def should_notify(facts: RunFacts, on: NotifyOn) -> bool:
    """``failure``: a non-zero exit; ``warning`` (default): that, or any warning; ``always``."""
    if on == "always":
        return True
    if not facts.succeeded:
        return True
    return on == "warning" and bool(facts.warnings)


def _sentence(facts: RunFacts) -> str:
    names = [a.name or a.id or "?" for a in facts.audiences]
    what = (
        f"audience {names[0]!r}"
        if len(names) == 1
        else f"{len(names)} audiences"
        if names
        else "the run"
    )
    if not facts.succeeded:
        meaning = EXIT_CODES.get(facts.exit_code, "failed")
        line = f"spotify-audience-sync {facts.command} of {what} ended with exit {facts.exit_code}"
        return line + f" ({meaning})" + (f": {facts.error}" if facts.error else "")
    actions = sorted({a.action for a in facts.audiences if a.action})
    line = f"spotify-audience-sync {facts.command} of {what}: {', '.join(actions) or 'done'}"
    if facts.warnings:
        codes = ", ".join(sorted(set(facts.warnings)))
        line += f", with {len(facts.warnings)} warning{'s' * (len(facts.warnings) != 1)} ({codes})"
    return line


def notification(facts: RunFacts) -> dict[str, Any]:
    """The JSON body: Slack's ``text`` plus the run's structured fields."""
    first = facts.audiences[0] if len(facts.audiences) == 1 else None
    return {
        "text": _sentence(facts),
        "run_id": facts.run_id,
        "command": facts.command,
        "exit_code": facts.exit_code,
        "audience_name": first.name if first else None,
        "audience_id": first.id if first else None,
        "warnings": list(facts.warnings),
        "error": facts.error,
        "audiences": [
            {
                "name": a.name,
                "id": a.id,
                "action": a.action,
                "status": a.status,
                "exit_code": a.exit_code,
                "rows_read": a.rows_read,
                "identifiers": a.identifiers,
                "rejected": dict(a.rejected),
                "size": {"min": a.size_min, "max": a.size_max},
            }
            for a in facts.audiences
        ],
    }


Post = Callable[..., int]


def _post(url: str, body: dict[str, Any], timeout: float = TIMEOUT) -> int:
    import httpx2

    from spotify_audience_sync.redact import guard_http_logs

    guard_http_logs()  # a webhook URL is a credential: httpx2 would log it whole

    with httpx2.Client(timeout=timeout, follow_redirects=False) as http:
        return http.post(url, json=body).status_code


def send_notification(
    url: str,
    facts: RunFacts,
    *,
    post: Post = _post,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = ATTEMPTS,
    timeout: float = TIMEOUT,
) -> str | None:
    """POST the notification; None once a 2xx came back, else why not (a warning's message).

    Retried on network errors, 429 and 5xx, ``attempts`` times in all with 1 s, 2 s waits; a
    4xx is final (the receiver refused the body: sending it again would not change that).
    A stopped run passes one attempt and a short timeout: its final object must come within
    the grace period a scheduler gives it.
    """
    body, shown = notification(facts), mask_url(url).split("/", 3)[2]
    why = "no attempt"
    for attempt in range(1, attempts + 1):
        try:
            status = post(url, body) if timeout == TIMEOUT else post(url, body, timeout)
        except Exception as exc:  # any transport failure: the run's outcome must not change
            why = f"{type(exc).__name__}"
        else:
            if 200 <= status < 300:
                log.info("notification sent to %s", shown)
                return None
            why = f"HTTP {status}"
            if status < 500 and status != 429:
                break
        if attempt < attempts:
            sleep(float(attempt))
    return f"the notification to {shown} was not delivered ({why})"
