"""Typed views of Ads API v3 responses (pydantic), tolerant of fields Spotify adds later."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from spotify_audience_sync.spotify.redact import mask_url

__all__ = [
    "AdAccount",
    "Audience",
    "AudiencePage",
    "AudienceStatus",
    "Paging",
    "SizeRange",
    "UploadUrl",
]


class AudienceStatus(StrEnum):
    """Known statuses; an unknown one still parses (as a plain string) instead of failing."""

    PROCESSING = "PROCESSING"
    EMPTY = "EMPTY"
    LEARNING = "LEARNING"
    BOOKABLE = "BOOKABLE"
    LIVE = "LIVE"
    ARCHIVED = "ARCHIVED"


def _uuid(value: str) -> str:
    """An id from an answer: a UUID, or the answer is refused (an id becomes a file name)."""
    from spotify_audience_sync.spotify.answers import is_uuid

    if not is_uuid(value):
        raise ValueError("not a UUID")
    return value


#: An id Spotify assigned (audience, upload): validated where the answer is parsed.
AudienceId = Annotated[str, AfterValidator(_uuid)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SizeRange(_Model):
    """Spotify reports an approximate range of matched users, never an exact count."""

    min: int | None = None
    max: int | None = None


class Audience(_Model):
    id: AudienceId
    name: str
    description: str | None = None
    type: str | None = None
    subtype: str | None = None
    status: AudienceStatus | str | None = None
    size: SizeRange | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: LOOKALIKE audiences: the customer list they were modelled on.
    seed_audience_id: str | None = None
    lookalike_audience_ids: list[str] = []

    @property
    def settled(self) -> bool:
        """Processing is over: BOOKABLE/LIVE (usable) or EMPTY (nothing matched)."""
        return self.status in (AudienceStatus.BOOKABLE, AudienceStatus.LIVE, AudienceStatus.EMPTY)


class AdAccount(_Model):
    """The ad account, read before any input so a wrong id fails in a second, not after a read."""

    id: str
    name: str | None = None
    status: str | None = None
    country_code: str | None = None
    currency_code: str | None = None


class Paging(_Model):
    page_size: int | None = None
    total_results: int | None = None
    offset: int | None = None
    current_page: int | None = None


class AudiencePage(_Model):
    paging: Paging = Paging()
    audiences: list[Audience] = []


class UploadUrl(_Model):
    """Where to upload a customer-list file. ``upload_url`` is a secret (signed): repr masks it."""

    id: AudienceId
    upload_url: str

    def __repr__(self) -> str:
        return f"UploadUrl(id={self.id!r}, upload_url={mask_url(self.upload_url)!r})"

    __str__ = __repr__
