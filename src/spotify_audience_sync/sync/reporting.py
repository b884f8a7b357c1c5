"""What a finished run tells the machines that watch it: a notification and metrics.

The Job calls :func:`deliver` once a run has its exit code, whatever the outcome (an error
raised included), so `sync`, `sync --audience-column`, `run PLAN` and the Python API alert and
chart alike. Nothing here changes the outcome: what cannot be delivered comes back as a
warning for the Job to emit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from spotify_audience_sync.errors import SyncError
from spotify_audience_sync.sync.facts import AudienceFacts, RunFacts

if TYPE_CHECKING:
    from spotify_audience_sync.sync.many import AudienceOutcome
    from spotify_audience_sync.sync.options import ServiceOptions

__all__ = ["audience_facts", "deliver", "run_facts"]


def audience_facts(outcome: AudienceOutcome) -> AudienceFacts:
    """One audience's counts and outcome (never a value)."""
    report, prepared = outcome.report, outcome.prepared
    rejected: dict[str, int] = {}
    rows = 0
    if prepared is not None:
        rows = prepared.report.rows_read
        for counts in prepared.report.identifiers.values():
            for reason, n in counts.rejected.items():
                if n and reason != "empty":  # a blank optional cell is no rejected value
                    rejected[reason] = rejected.get(reason, 0) + n
    return AudienceFacts(
        name=report.audience_name,
        id=report.audience_id,
        action=report.action,
        status=report.status,
        exit_code=outcome.exit_code,
        rows_read=rows,
        identifiers=report.identifiers,
        rejected=rejected,
        size_min=report.size_min,
        size_max=report.size_max,
        seconds=report.seconds.get("total", 0.0),
    )


def run_facts(
    run_id: str,
    command: str,
    exit_code: int,
    outcomes: Iterable[AudienceOutcome],
    warnings: Iterable[str],
    error: str | None = None,
) -> RunFacts:
    return RunFacts(
        run_id=run_id,
        command=command,
        exit_code=exit_code,
        finished_at=time.time(),
        audiences=tuple(audience_facts(o) for o in outcomes),
        warnings=tuple(warnings),
        error=error,
    )


def deliver(
    facts: RunFacts, service: ServiceOptions, *, hurry: bool = False
) -> list[tuple[str, str]]:
    """Notify and write or push metrics as ``service`` asks; what failed, as (code, message).

    Never raises: a channel that fails for any reason is a warning, never the run's outcome.
    ``hurry`` (a stopped run): one attempt each, two seconds at most, so the final object still
    comes within a scheduler's grace period."""
    from spotify_audience_sync.sync.alerts import send_notification, should_notify
    from spotify_audience_sync.sync.metrics import push_metrics, write_metrics_file

    problems: list[tuple[str, str]] = []

    def attempt(code: str, action: Callable[[], str | None]) -> None:
        try:
            why = action()
        except SyncError as exc:
            why = str(exc)
        except Exception as exc:  # a bug or a foreign error: still never the run's outcome
            why = f"{code.replace('_', ' ')} ({type(exc).__name__})"
        if why is not None:
            problems.append((code, why))

    if service.notify_url and should_notify(facts, service.notify_on):
        url = service.notify_url
        tries, wait = (1, 2.0) if hurry else (3, 10.0)
        attempt(
            "notification_not_sent",
            lambda: send_notification(url, facts, attempts=tries, timeout=wait),
        )
    if service.metrics_file:
        path = service.metrics_file
        attempt("metrics_not_written", lambda: write_metrics_file(path, facts))
    if service.pushgateway_url:
        gateway, budget = service.pushgateway_url, 2.0 if hurry else 10.0
        attempt("metrics_not_pushed", lambda: push_metrics(gateway, facts, timeout=budget))
    return problems
