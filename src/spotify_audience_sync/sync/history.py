"""The history row of one audience's sync, as every run leaves it (`history` shows them).

One row per audience, whatever the outcome, so `history` and `status` see the runs of the CLI,
of a plan and of the Python API alike. Counts and ids only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spotify_audience_sync.sync.backend import RunRecord
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    from spotify_audience_sync.sync.many import AudienceOutcome

__all__ = ["history_row"]


def history_row(outcome: AudienceOutcome, run_id: str, started: str, seconds: float) -> RunRecord:
    """The row of ``outcome``, a run that started at ``started`` and took ``seconds``."""
    report, prepared = outcome.report, outcome.prepared
    counts = {}
    if prepared is not None and report.identifiers:
        counts = {k: c.written for k, c in prepared.report.identifiers.items()}
    return RunRecord(
        run_id=run_id,
        started_at=started,
        finished_at=utc_stamp(),
        ad_account_id=report.ad_account_id,
        audience_id=report.audience_id,
        audience_name=report.audience_name,
        action=report.action,
        identifiers=report.identifiers,
        counts=counts,
        bytes=report.bytes,
        fingerprint=report.fingerprint,
        status=report.status,
        size_min=report.size_min,
        size_max=report.size_max,
        exit_code=outcome.exit_code,
        seconds=round(seconds, 3),
        error=None if outcome.error is None else str(outcome.error.get("message")),
    )
