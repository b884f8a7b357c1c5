"""What a run keeps in step besides membership: the name, the description and a lookalike.

A plan entry renamed, or a run given ``--audience-id`` with another ``--audience-name``, means
the audience in Ads Manager should carry the new name: the run PATCHes it instead of leaving
Ads Manager and the source of truth to drift apart. A lookalike seeded from the customer list
is kept at exactly one: found by its seed (state first, then the seed's own
``lookalike_audience_ids``), created only when none exists, so a rerun never makes a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spotify_audience_sync.errors import RemoteError
from spotify_audience_sync.spotify.models import Audience, AudienceStatus

if TYPE_CHECKING:
    from spotify_audience_sync.spotify.client import AdsClient

__all__ = ["Rename", "ensure_lookalike", "lookalike_name", "rename", "wanted_edits"]

MAX_NAME = 80


@dataclass(frozen=True)
class Rename:
    """The fields to change on an audience (None: leave as is)."""

    name: str | None = None
    description: str | None = None

    def __bool__(self) -> bool:
        return self.name is not None or self.description is not None

    def fields(self) -> list[str]:
        return [f for f in ("name", "description") if getattr(self, f) is not None]


def wanted_edits(audience: Audience, name: str | None, description: str | None) -> Rename:
    """What differs between the audience and what the run was given; None given = keep."""
    return Rename(
        name=name if name is not None and name != audience.name else None,
        description=(
            description
            if description is not None and description != (audience.description or "")
            else None
        ),
    )


def rename(client: AdsClient, audience: Audience, edits: Rename) -> Audience:
    """PATCH the audience's name and/or description."""
    if not edits:
        return audience
    kind = audience.type or "CUSTOM"
    return client.edit_audience(
        audience.id, name=edits.name, description=edits.description, audience_type=kind
    )


def lookalike_name(seed_name: str) -> str:
    """``<seed> lookalike``, the seed's name shortened to fit Spotify's 80 characters."""
    suffix = " lookalike"
    return seed_name[: MAX_NAME - len(suffix)].rstrip() + suffix


def _usable(client: AdsClient, audience_id: str, seed_id: str) -> Audience | None:
    try:
        found = client.get_audience(audience_id)
    except RemoteError as exc:
        if exc.status in (400, 404):
            return None
        raise
    if found.seed_audience_id != seed_id or found.status == AudienceStatus.ARCHIVED:
        return None
    return found


def ensure_lookalike(
    client: AdsClient, seed: Audience, known_id: str | None = None, name: str | None = None
) -> tuple[Audience, bool]:
    """The one LOOKALIKE audience seeded from ``seed``, created if there is none.

    Returns it and whether it was created now. ``known_id`` is the one state remembers.
    """
    seed = client.get_audience(seed.id)  # fresh: its lookalike_audience_ids are current
    candidates = [known_id] if known_id else []
    candidates += sorted(set(seed.lookalike_audience_ids) - set(candidates))
    for candidate in candidates:
        found = _usable(client, candidate, seed.id)
        if found is not None:
            return found, False
    created = client.create_lookalike(name or lookalike_name(seed.name), seed.id)
    return created, True
