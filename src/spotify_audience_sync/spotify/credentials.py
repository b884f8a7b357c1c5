"""What a login is made of, and where it may be kept: ``TokenSet``, ``TokenSink``, ``Refresh``.

Its own module so the token file (``tokenfile``) and the session (``auth``) share them without
importing each other; ``auth`` re-exports them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from spotify_audience_sync.spotify.redact import mask

__all__ = ["Refresh", "SharedSink", "TokenSet", "TokenSink"]


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint gave us, with absolute times (epoch seconds).

    The access token is kept beside the refresh token, so parallel runs reuse a live one
    instead of each refreshing (and racing each other's rotation).
    """

    access_token: str | None
    refresh_token: str | None
    expires_at: float
    obtained_at: float
    #: When the user logged in (kept across refreshes; 0 where unknown, e.g. an env token).
    logged_in_at: float = 0.0
    #: The token endpoint that issued these tokens: they are sent to no other.
    token_url: str | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={mask(self.access_token)!r}, "
            f"refresh_token={mask(self.refresh_token)!r}, expires_at={self.expires_at})"
        )

    @classmethod
    def from_reply(
        cls,
        reply: dict[str, Any],
        now: float,
        old_refresh: str | None = None,
        *,
        previous: TokenSet | None = None,
        token_url: str | None = None,
    ) -> TokenSet:
        """Keep the old refresh token when the reply carries none (no rotation), and the
        login time of ``previous`` (a refresh is not a login)."""
        return cls(
            access_token=str(reply["access_token"]),
            refresh_token=str(reply.get("refresh_token") or old_refresh or "") or None,
            expires_at=now + float(reply.get("expires_in") or 3600),
            obtained_at=now,
            logged_in_at=previous.logged_in_at if previous is not None else now,
            token_url=token_url or (previous.token_url if previous is not None else None),
        )


class TokenSink(Protocol):
    """A place that keeps tokens: the token file, or the state database (``sync.tokens``).

    ``durable`` sinks are the ones the user configured for runs on machines without a disk
    (a rotated token that does not reach them fails the run); the token file may be on a
    container's scratch disk, so it is not.
    """

    durable: bool

    def describe(self) -> str: ...
    def load(self) -> TokenSet | None: ...
    def save(self, tokens: TokenSet) -> None:
        """Keep ``tokens``; OSError or SyncError when this place cannot."""
        ...


class SharedSink(TokenSink, Protocol):
    """A sink other runs read too, with a lock that keeps their refreshes apart: held, a run
    re-reads the tokens and refreshes only if they still need it (``OAuthSession``)."""

    def lock(self) -> AbstractContextManager[object]: ...


@dataclass
class Refresh:
    """One refresh: whether the refresh token rotated, and where the new tokens went."""

    rotated: bool
    saved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
