"""What a finished run says about itself to machines: counts, ids, codes. Never a value.

Alerts (:mod:`spotify_audience_sync.sync.alerts`) and metrics
(:mod:`spotify_audience_sync.sync.metrics`) read these records, so neither needs to know how a
run was assembled (one sync, an audience column, a plan): the Job fills them once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AudienceFacts", "RunFacts"]


@dataclass(frozen=True)
class AudienceFacts:
    """One audience's part of a run."""

    name: str | None
    id: str | None = None
    action: str | None = None
    status: str | None = None
    exit_code: int = 0
    rows_read: int = 0
    identifiers: int = 0
    #: Rejected values by reason (``malformed``, ``invalid_phone``, ...), summed over types.
    rejected: dict[str, int] = field(default_factory=dict)
    size_min: int | None = None
    size_max: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class RunFacts:
    """A whole run: its id and outcome, its audiences, the codes of the warnings it gave."""

    run_id: str
    command: str
    exit_code: int
    finished_at: float
    audiences: tuple[AudienceFacts, ...] = ()
    warnings: tuple[str, ...] = ()
    #: The error's own message: already free of values and secrets (errors.SyncError's rule).
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Exit 0: done, skipped, dry run, or uploaded without waiting."""
        return self.exit_code == 0
