"""Notifications: one POST a Slack webhook takes, to a real receiver on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Receiver
from spotify_audience_sync.sync.alerts import notification, send_notification, should_notify
from spotify_audience_sync.sync.facts import AudienceFacts, RunFacts


def _facts(exit_code: int = 0, warnings: tuple[str, ...] = (), **kw: Any) -> RunFacts:
    audience = AudienceFacts(
        name="CRM VIP",
        id="5a1d8c9e-0000-4000-8000-00000000aaaa",
        action="replaced",
        status="BOOKABLE",
        exit_code=exit_code,
        rows_read=1200,
        identifiers=1100,
        rejected={"malformed": 7},
        size_min=800,
        size_max=900,
    )
    return RunFacts("run-1", "sync", exit_code, 1_700_000_000.0, (audience,), warnings, **kw)


@pytest.mark.parametrize(
    ("on", "exit_code", "warnings", "expected"),
    [
        pytest.param("warning", 0, (), False, id="warning-quiet-success"),
        pytest.param("warning", 0, ("column_rejects",), True, id="warning-on-warning"),
        pytest.param("warning", 69, (), True, id="warning-on-failure"),
        pytest.param("failure", 0, ("column_rejects",), False, id="failure-ignores-warning"),
        pytest.param("failure", 3, (), True, id="failure-on-empty"),
        pytest.param("always", 0, (), True, id="always"),
    ],
)
def test_when_a_run_notifies(on, exit_code, warnings, expected) -> None:
    assert should_notify(_facts(exit_code, warnings), on) is expected


def test_body_is_a_slack_message_with_structured_fields(receiver: Receiver) -> None:
    facts = _facts(69, error="create an audience: HTTP 400 (trace 1234)")
    assert send_notification(receiver.url, facts) is None
    [body] = receiver.bodies
    assert body["text"] == (
        "spotify-audience-sync sync of audience 'CRM VIP' ended with exit 69 (Spotify or "
        "Google refused the request): create an audience: HTTP 400 (trace 1234)"
    )
    assert body["run_id"] == "run-1"
    assert body["exit_code"] == 69
    assert body["audience_name"] == "CRM VIP"
    assert body["audience_id"] == "5a1d8c9e-0000-4000-8000-00000000aaaa"
    assert body["audiences"][0]["rejected"] == {"malformed": 7}
    assert body["audiences"][0]["identifiers"] == 1100


def test_warning_sentence_names_the_codes() -> None:
    body = notification(_facts(0, ("similar_audience_name", "column_rejects")))
    assert body["text"] == (
        "spotify-audience-sync sync of audience 'CRM VIP': replaced, with 2 warnings "
        "(column_rejects, similar_audience_name)"
    )


def test_retried_on_5xx_then_delivered(receiver: Receiver) -> None:
    receiver.statuses = [503, 502]
    waits: list[float] = []
    assert send_notification(receiver.url, _facts(1), sleep=waits.append) is None
    assert len(receiver.bodies) == 3
    assert waits == [1.0, 2.0]


def test_a_refusal_is_final_and_a_warning_without_the_secret(receiver: Receiver) -> None:
    receiver.statuses = [400]
    why = send_notification(receiver.url, _facts(1), sleep=lambda _s: None)
    assert len(receiver.bodies) == 1
    assert why is not None
    assert "HTTP 400" in why
    assert "127.0.0.1" in why
    assert "webhook-secret-part" not in why


def test_unreachable_receiver_is_bounded_and_a_warning(receiver: Receiver) -> None:
    url = receiver.url
    receiver.server.server_close()  # nothing listens any more
    waits: list[float] = []
    why = send_notification(url, _facts(1), sleep=waits.append)
    assert why is not None
    assert "not delivered" in why
    assert len(waits) == 2  # three attempts in all
