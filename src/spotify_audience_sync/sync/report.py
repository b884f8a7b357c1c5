"""What a mirror sync did, for the JSON report, the summary and the history: counts and ids only.

Its own module so the report can be read (and built by callers and tests) without the sync
sequence; :mod:`spotify_audience_sync.sync.mirror` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Action", "SyncReport"]

Action = Literal[
    "created",
    "replaced",
    "skipped",
    "would create",
    "would replace",
    "would skip",
    "orphaned",  # its group or plan sync is gone; kept (see sync/orphans.py)
    "deleted",  # ... and deleted with --prune-orphans
]


@dataclass
class SyncReport:
    """What a sync did: for the JSON report and the summary. Counts and ids only."""

    ad_account_id: str
    audience_id: str | None = None
    audience_name: str | None = None
    action: Action | None = None
    identifiers: int = 0
    #: Input rows with at least one accepted identifier: the per-person match rate's base.
    rows_with_identifier: int = 0
    bytes: int = 0
    fingerprint: str | None = None
    upload_requests: int = 0
    upload_resumes: int = 0
    upload_bytes_resent: int = 0
    status: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    #: The audience's fields changed (or, in a dry run, to be changed) to match the run.
    edited: list[str] = field(default_factory=list)
    #: The LOOKALIKE audience kept seeded from this one (``--lookalike``).
    lookalike_id: str | None = None

    @property
    def match_rate(self) -> tuple[float, float] | None:
        """Per identifier: Spotify's matched-size range over the distinct identifiers uploaded.

        Lower for a file with several identifiers per person (a person matched by email and
        phone is one member): compare it only between runs of one layout and set of columns.
        """
        return self._rate(self.identifiers)

    @property
    def match_rate_per_person(self) -> tuple[float, float] | None:
        """Per person: the matched-size range over the input rows with an accepted identifier."""
        return self._rate(self.rows_with_identifier)

    def _rate(self, base: int) -> tuple[float, float] | None:
        if self.size_min is None or self.size_max is None or not base:
            return None
        return self.size_min / base, self.size_max / base

    def to_dict(self) -> dict[str, Any]:
        def shown(rate: tuple[float, float] | None) -> dict[str, float] | None:
            return None if rate is None else {"min": round(rate[0], 4), "max": round(rate[1], 4)}

        rates = {"per_person": self.match_rate_per_person, "per_identifier": self.match_rate}
        return {
            "ad_account_id": self.ad_account_id,
            "audience_id": self.audience_id,
            "audience_name": self.audience_name,
            "action": self.action,
            "identifiers": self.identifiers,
            "rows_with_identifier": self.rows_with_identifier,
            "bytes": self.bytes,
            "fingerprint": self.fingerprint,
            "upload": {
                "requests": self.upload_requests,
                "resumes": self.upload_resumes,
                "bytes_resent": self.upload_bytes_resent,
            },
            "status": self.status,
            "size": {"min": self.size_min, "max": self.size_max},
            "match_rate": {name: shown(rate) for name, rate in rates.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "edited": list(self.edited),
            "lookalike_id": self.lookalike_id,
        }
