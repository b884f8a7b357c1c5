"""Audiences whose source disappeared: found by owner, reported, deleted only when asked.

Mirror keeps one audience equal to its segment; a *set* of audiences (the groups of an
``--audience-column`` run, the entries of a plan) needs the same promise one level up: when a
group or an entry disappears, its audience must not keep its last members forever. Each
audience such a run produces is saved with an *owner* key; the next run of the same owner
compares what it produced with what state says it owns. The difference is reported (an
``orphaned_audience`` warning and a history row) and, with ``--prune-orphans``, deleted: only
audiences this state recorded as produced by this owner, never one it did not create. A LIVE
audience (in use by an ad set) answers 409: a warning, not a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from spotify_audience_sync.errors import RemoteError, SyncError

if TYPE_CHECKING:
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend
    from spotify_audience_sync.sync.state import SyncState

__all__ = ["Orphan", "claim", "find_orphans", "owner_key", "prune_orphans"]


def owner_key(kind: Literal["column", "plan"], *parts: str) -> str:
    """A stable key for the producer, one hashed level per part: ``column:<column>:<template>``
    or ``plan:<plan file>:<sync name>``. Hashed so no query text or path is
    stored; levels, so ``plan:<plan file>`` finds what every sync of a plan made."""
    digests = [hashlib.sha256(part.encode()).hexdigest()[:12] for part in parts]
    return ":".join([kind, *digests])


def claim(store: StateBackend, ad_account_id: str, owner: str, audience_ids: Iterable[str]) -> None:
    """Record ``owner`` as the producer of each audience (those with a saved state)."""
    for audience_id in audience_ids:
        state = store.load(ad_account_id, audience_id)
        if state is not None and state.owner != owner:
            store.save(replace(state, owner=owner))


@dataclass(frozen=True)
class Orphan:
    """An audience its owner no longer produces, and what became of it."""

    audience_id: str
    audience_name: str
    outcome: Literal["kept", "deleted", "live", "gone", "failed"] = "kept"


def find_orphans(
    store: StateBackend,
    ad_account_id: str,
    owner: str,
    produced: Iterable[str],
    *,
    current: Iterable[str] | None = None,
) -> list[SyncState]:
    """States of audiences ``owner`` (or a level below it) produced before but not in this run.

    ``current``: the owners below ``owner`` still there (a plan's syncs): only what the others
    made is orphaned (a plan sync removed from the plan)."""
    now = set(produced)
    found = [s for s in store.owned(ad_account_id, owner) if s.audience_id not in now]
    if current is not None:
        alive = set(current)
        found = [s for s in found if s.owner not in alive]
    return found


def prune_orphans(
    client: AdsClient, store: StateBackend, orphans: list[SyncState], *, delete: bool
) -> list[Orphan]:
    """Delete each orphan when ``delete``; a LIVE one (409) is kept and said so."""
    results: list[Orphan] = []
    for state in orphans:
        outcome: Literal["kept", "deleted", "live", "gone", "failed"] = "kept"
        if delete:
            try:
                client.delete_audience(state.audience_id)
                outcome = "deleted"
            except RemoteError as exc:
                outcome = "live" if exc.status == 409 else "gone" if exc.status == 404 else "failed"
            except SyncError:  # transient, or an unknown outcome: kept; the next run tries again
                outcome = "failed"
            if outcome in ("deleted", "gone"):
                store.forget(state.ad_account_id, state.audience_id)
        results.append(Orphan(state.audience_id, state.audience_name, outcome))
    return results
