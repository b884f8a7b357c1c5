"""Prometheus metrics of a run: a textfile for node_exporter, or a push to a Pushgateway.

A scheduled sync is a batch job: nothing is there to scrape while it runs, so its numbers are
left where Prometheus looks for batch jobs (the textfile collector's folder on a VM, a
Pushgateway for a Kubernetes CronJob). Each series is labelled with the audience's name, the
one thing a person recognises on a dashboard; ``last_success_timestamp_seconds`` survives a
failed run (carried over from the previous file, or left untouched at the gateway), so an alert
on "no success for a day" works whatever failed since.
"""

from __future__ import annotations

import os
import tempfile
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING

from spotify_audience_sync.errors import OutputError, TransientError
from spotify_audience_sync.spotify.redact import mask_url
from spotify_audience_sync.sync.facts import AudienceFacts, RunFacts

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["JOB", "PREFIX", "push_metrics", "registry", "write_metrics_file"]

PREFIX = "spotify_audience_sync_"
JOB = "spotify_audience_sync"
_LAST_SUCCESS = PREFIX + "last_success_timestamp_seconds"

#: name → help; every gauge is labelled by ``audience`` (and ``reason`` where noted).
GAUGES: dict[str, str] = {
    "last_run_exit_code": "Exit code of the last run that synced the audience.",
    "last_run_timestamp_seconds": "When the last run ended (Unix time).",
    "last_success_timestamp_seconds": "When the last run that ended with exit 0 ended.",
    "rows_read": "Input rows read for the audience by the last run.",
    "identifiers_uploaded": "Distinct identifiers in the last run's file.",
    "identifiers_rejected": "Values rejected by the last run, by reason.",
    "duration_seconds": "How long the last run took for the audience.",
    "audience_size_min": "Lower end of Spotify's matched-size range after the last run.",
    "audience_size_max": "Upper end of Spotify's matched-size range after the last run.",
}


def _label(audience: AudienceFacts) -> str:
    return audience.name or audience.id or "unnamed"


def registry(
    facts: RunFacts, previous_success: dict[str, float] | None = None
) -> CollectorRegistry:
    """The run's gauges; ``previous_success`` (audience → time) fills in a failed audience's
    last success. An audience that failed and never succeeded has no such series."""
    from prometheus_client import CollectorRegistry, Gauge

    # Each audience by its own outcome: one failed group must not mark the others failed.
    successes = {
        _label(a): (previous_success or {}).get(_label(a))
        if a.exit_code != 0
        else facts.finished_at
        for a in facts.audiences
    }
    reg = CollectorRegistry()
    # A family with no sample is not declared at all: pushed empty, it would wipe the
    # gateway's last success time of the audience.
    wanted = {
        name: text
        for name, text in GAUGES.items()
        if name != "last_success_timestamp_seconds"
        or any(v is not None for v in successes.values())
    }
    gauges = {
        name: Gauge(
            PREFIX + name,
            text,
            ["audience", "reason"] if name == "identifiers_rejected" else ["audience"],
            registry=reg,
        )
        for name, text in wanted.items()
    }
    for audience in facts.audiences:
        label = _label(audience)
        gauges["last_run_exit_code"].labels(label).set(audience.exit_code)
        gauges["last_run_timestamp_seconds"].labels(label).set(facts.finished_at)
        success = successes[label]
        if success is not None:
            gauges["last_success_timestamp_seconds"].labels(label).set(success)
        gauges["rows_read"].labels(label).set(audience.rows_read)
        gauges["identifiers_uploaded"].labels(label).set(audience.identifiers)
        for reason, count in sorted(audience.rejected.items()):
            gauges["identifiers_rejected"].labels(label, reason).set(count)
        gauges["duration_seconds"].labels(label).set(audience.seconds)
        if audience.size_min is not None and audience.size_max is not None:
            gauges["audience_size_min"].labels(label).set(audience.size_min)
            gauges["audience_size_max"].labels(label).set(audience.size_max)
    return reg


def _previous_success(path: Path) -> dict[str, float]:
    """The last-success times of the file this run replaces (none if it can't be read)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
        families = list(text_string_to_metric_families(text))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return {
        sample.labels["audience"]: float(sample.value)
        for family in families
        if family.name == _LAST_SUCCESS
        for sample in family.samples
        if "audience" in sample.labels
    }


def write_metrics_file(path: str | Path, facts: RunFacts) -> None:
    """Write the textfile atomically (a temp file beside it, then rename), as the textfile
    collector requires: a scrape never sees half a file."""
    from prometheus_client import generate_latest

    target = Path(path)
    if not facts.audiences:  # nothing about any audience: keep the series the file has
        return
    data = generate_latest(registry(facts, _previous_success(target)))
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temp, 0o644)  # node_exporter runs as another user: it must read it
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"--metrics-file {target}: cannot write ({exc.strerror})") from exc


def push_metrics(gateway: str, facts: RunFacts, *, timeout: float = 10.0) -> None:
    """Push each audience's gauges to its own group (job, audience).

    POST (push-add) replaces only the series sent: a failed run sends no last-success time, so
    the gateway keeps the previous one.
    """
    from prometheus_client import pushadd_to_gateway

    for audience in facts.audiences:
        single = RunFacts(
            facts.run_id, facts.command, facts.exit_code, facts.finished_at, (audience,)
        )
        try:
            pushadd_to_gateway(
                gateway,
                job=JOB,
                registry=registry(single),
                grouping_key={"audience": _label(audience)},
                timeout=timeout,
            )
        except (OSError, HTTPException, ValueError) as exc:  # refused, not HTTP, a bad URL
            raise TransientError(
                f"metrics not pushed to {mask_url(gateway)} ({type(exc).__name__})"
            ) from exc
