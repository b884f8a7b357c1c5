"""What the sync commands show of a Job: its events, a line per audience, the JSON report.

Shared by `sync`, `sync --audience-column`, `run PLAN` and `demo`, so each prints the same
lines for the same outcome; the work itself is :class:`~spotify_audience_sync.sync.job.Job`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.sync.events import JobEvent
    from spotify_audience_sync.sync.many import AudienceOutcome
    from spotify_audience_sync.sync.mirror import SyncReport

__all__ = [
    "audience_line",
    "job_events",
    "report_outcomes",
    "summary",
    "sync_result",
    "write_report",
]


def job_events(out: Output) -> Callable[[JobEvent], None]:
    """The Job's one callback: each event a JSON line (or a verbose line), and the line a
    person reads for it, where it has one."""

    def show(event: JobEvent) -> None:
        out.event(event.name, **event.labels, **event.fields)
        if event.text is not None:
            out.summary(event.text)

    return show


def summary(report: SyncReport) -> str:
    """One audience's sync for a person: what was done, its status and match rate."""
    from spotify_audience_sync.segment.report import plural

    audience = f"{report.audience_name!r} ({report.audience_id or 'new'})"
    line = f"audience {audience}: {report.action}"
    if report.action in ("created", "replaced"):
        line += (
            f"; {plural(report.identifiers, 'identifier')}, {plural(report.bytes, 'byte')} in "
            f"{plural(report.upload_requests, 'request')} "
            f"({plural(report.upload_resumes, 'resume')})"
        )
    if report.status:
        line += f"; status {report.status}"
    if report.size_min is not None and report.size_max is not None:
        line += f", size {report.size_min:,} to {report.size_max:,}"
    person, identifier = report.match_rate_per_person, report.match_rate
    if person is not None and identifier is not None:
        line += (
            f"; estimated match rate {person[0]:.0%} to {person[1]:.0%} per person (of "
            f"{plural(report.rows_with_identifier, 'input row')} with an accepted identifier), "
            f"{identifier[0]:.0%} to {identifier[1]:.0%} per identifier (of "
            f"{report.identifiers:,} uploaded)"
        )
    if report.status == "EMPTY":
        line += "\nSpotify matched none of the identifiers: check the normalization options"
    elif report.status == "PROCESSING" and report.action in ("created", "replaced"):
        line += (
            "\nstill processing (Spotify can take up to three days); check later with "
            f"`spotify-audience-sync audiences get {report.audience_id}`"
        )
    return line


def sync_result(outcome: AudienceOutcome, run_id: str) -> dict[str, Any]:
    """The JSON report of one sync: what was prepared and what the sync did (counts and ids
    only), under the run id that `history` shows."""
    prepared = outcome.prepared
    return {
        "run_id": run_id,
        "prepare": prepared.report.to_dict() if prepared is not None else None,
        "sync": outcome.report.to_dict(),
    }


def write_report(path: str, data: dict[str, Any], out: Output) -> None:
    """Write the report; a failure now (the path was checked first) is a warning, never the
    run's outcome: the audience has already been changed, and a scheduler must not retry."""
    from spotify_audience_sync.errors import OutputError
    from spotify_audience_sync.segment.report import write_json

    try:
        write_json(path, data)
    except OutputError as exc:
        out.warning(str(exc), code="report_not_written")


def audience_line(outcome: AudienceOutcome) -> str:
    """One audience's result in a run of many, for a person."""
    prefix = f"[{outcome.key}] " if outcome.key is not None else ""
    if outcome.error is not None:
        name = outcome.report.audience_name or outcome.key
        return f"{prefix}audience {name!r}: failed (exit {outcome.exit_code}): " + str(
            outcome.error.get("message")
        )
    return prefix + summary(outcome.report)


def report_outcomes(out: Output, outcomes: list[AudienceOutcome], **tags: Any) -> None:
    """Print each audience's result: a line for a person, an ``audience_result`` for machines."""
    prefix = f"{tags['sync_name']}: " if "sync_name" in tags else ""
    for outcome in outcomes:
        out.outcome(prefix + audience_line(outcome))
        # info, whatever the outcome: the line a person reads is the one above, and the
        # final object carries the run's exit code.
        out.event("audience_result", **tags, **outcome.to_dict())
