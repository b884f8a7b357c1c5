"""The one exception sandbox logic raises; the server turns it into the right error body."""

from __future__ import annotations

__all__ = ["Problem"]


class Problem(Exception):
    """An HTTP error answer: Ads API ErrorResponse, OAuth error JSON or GCS XML by ``kind``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        kind: str = "ads",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind
        self.headers = headers or {}
