"""Audience names as a person types them: the rules that keep one name meaning one audience.

Spotify compares names exactly, so ``"nu 200k"``, ``"NU 200k "`` and ``"   "`` are three
names to it. A name given here loses its surrounding whitespace (a trailing space is never
meant), a blank one is refused, and an audience whose name differs from it only in case or
surrounding whitespace is pointed out: it is not the one synced, but it is probably the one
meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from spotify_audience_sync.errors import UsageError

if TYPE_CHECKING:
    from spotify_audience_sync.spotify.models import Audience

__all__ = ["MAX_NAME", "MIN_NAME", "check_name", "clean_name", "near_misses"]

MIN_NAME, MAX_NAME = 2, 80  # Spotify's limits for an audience name


def clean_name(name: str | None) -> str | None:
    """The name without surrounding whitespace (``None`` stays ``None``)."""
    return None if name is None else name.strip()


def check_name(name: str | None) -> None:
    """Refuse a blank name, or one outside Spotify's 2 to 80 characters (after stripping)."""
    if name is None:
        return
    cleaned = name.strip()
    if not cleaned:
        raise UsageError("--audience-name is blank")
    if not MIN_NAME <= len(cleaned) <= MAX_NAME:
        raise UsageError(f"--audience-name must be {MIN_NAME} to {MAX_NAME} characters")


def near_misses(name: str, audiences: Iterable[Audience]) -> list[Audience]:
    """Audiences named like ``name`` but not exactly: other case or surrounding whitespace."""
    key = name.strip().casefold()
    return [a for a in audiences if a.name != name and a.name.strip().casefold() == key]
