"""Guards a sync passes before anything is written: what Spotify would ignore, or what would
empty or shrink an audience by mistake.

Checked from upper bounds before any request, and from exact counts before the upload
completes (:mod:`spotify_audience_sync.sync.mirror` says when and why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spotify_audience_sync.errors import SafetyError
from spotify_audience_sync.segment.quality import column_problems

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.sync.mirror import SyncOptions
    from spotify_audience_sync.sync.state import SyncState

__all__ = ["MAX_BYTES", "MIN_IDENTIFIERS", "check_guards", "identifier_count"]

MIN_IDENTIFIERS = 1_000
MAX_BYTES = 1 << 30
SHRINK_FLOOR = 0.5
#: A type is guarded against shrinking on its own once it had at least this many identifiers.
MIN_TYPE_FOR_SHRINK = 1_000


def identifier_count(prepared: PreparedSegment) -> int:
    return sum(c.written for c in prepared.report.identifiers.values())


def check_guards(
    prepared: PreparedSegment,
    last: SyncState | None,
    options: SyncOptions,
    *,
    bound: bool = False,
) -> None:
    """Refuse what Spotify would ignore or what would wipe an audience by mistake.

    With ``bound``, before deduplication: each type's accepted identifiers stand in for its
    distinct ones (never fewer), so only what is sure to be refused is refused; the exact
    check follows once the distinct rows are counted (before the upload completes).
    """
    counts = {
        key: c.accepted if bound else c.written for key, c in prepared.report.identifiers.items()
    }
    identifiers = sum(counts.values())
    if identifiers == 0:
        raise SafetyError("the segment has no valid identifier: refusing to empty the audience")
    if identifiers < MIN_IDENTIFIERS:
        raise SafetyError(
            f"only {identifiers:,} identifiers; Spotify does not update an audience "
            f"from fewer than {MIN_IDENTIFIERS:,}"
        )
    size = prepared.report.bytes_written
    if not bound and size > MAX_BYTES:
        raise SafetyError(f"the file would be {size:,} bytes; Spotify accepts at most 1 GiB")
    problems = column_problems(prepared.report, options.max_reject_rate)
    if problems:
        raise SafetyError(
            "refusing to sync: "
            + "; ".join(problem.message() for problem in problems)
            + f" (--max-reject-rate {options.max_reject_rate:g} sets the threshold)"
        )
    if last is None or options.allow_shrink:
        return
    if identifiers < SHRINK_FLOOR * last.identifiers:
        raise SafetyError(
            f"{identifiers:,} identifiers is under half of the last sync's "
            f"{last.identifiers:,} ({last.synced_at}); pass --allow-shrink if that is intended"
        )
    # Per type too: 1,200 emails replacing 1,000 emails and 1,333 phones keeps the total above
    # half, yet strips every phone from the audience.
    for key, before in sorted(last.counts.items()):
        after = counts.get(key, 0)
        if before >= MIN_TYPE_FOR_SHRINK and after < SHRINK_FLOOR * before:
            raise SafetyError(
                f"{key}: {after:,} identifiers is under half of the last sync's {before:,} "
                f"({last.synced_at}); pass --allow-shrink if that is intended"
            )
