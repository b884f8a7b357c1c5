"""Sandbox knobs: timings, limits and one-shot fault rules, settable at start and per test.

Fault rules name a route by its OpenAPI ``operationId`` (``createAudience``, ``getAudience`` …)
or one of ``token``, ``authorize``, ``gcsStart``, ``gcsPut``, ``gcsCancel``; ``*`` matches every
Ads API route.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ADS_ROUTES",
    "OTHER_ROUTES",
    "SANDBOX_AD_ACCOUNT_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "FaultRule",
    "Faults",
    "SandboxConfig",
]

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_AD_ACCOUNT_ID = "5a1d8c9e-0000-4000-8000-000000000001"

ADS_ROUTES = (
    "getAdAccount",
    "createUploadUrl",
    "replaceUploadUrl",
    "createAudience",
    "batchGetAudiences",
    "getAudience",
    "editAudience",
    "deleteAudience",
)
OTHER_ROUTES = ("token", "authorize", "gcsStart", "gcsPut", "gcsCancel")


@dataclass
class FaultRule:
    """Misbehave on the next ``count`` requests of ``route``.

    ``status`` answers that status instead (429 gets ``Retry-After: retry_after``); ``drop``
    closes the connection without an answer (half-way through the request body when the rule
    applies ``before`` the handler); ``delay`` sleeps first. ``when="after"`` lets the request
    take effect and then spoils the answer: the ambiguous failure a client must reconcile.

    ``gcsPut`` only: a ``drop`` reads ``drop_after`` bytes of the chunk (default: half) before
    hanging up, and the session keeps what arrived up to a 256 KiB boundary, as GCS does;
    ``ack_bytes`` persists only that many bytes of the chunk and answers 308 with the shorter
    ``Range`` (GCS acknowledging less than was sent).
    """

    route: str
    count: int = 1
    status: int | None = None
    drop: bool = False
    delay: float = 0.0
    retry_after: int | None = None
    when: str = "before"
    drop_after: int | None = None
    ack_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.route != "*" and self.route not in ADS_ROUTES + OTHER_ROUTES:
            raise ValueError(f"unknown route {self.route!r}")
        if self.when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        for name in ("drop_after", "ack_bytes"):
            value = getattr(self, name)
            if value is not None and (self.route != "gcsPut" or value < 0):
                raise ValueError(f"{name} applies to gcsPut only and must be >= 0")

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """``ROUTE:STATUS[:COUNT]`` or ``ROUTE:drop[:COUNT]`` (the CLI's ``--fail`` syntax)."""
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"fault {spec!r}: expected ROUTE:STATUS[:COUNT] or ROUTE:drop[:COUNT]")
        count = int(parts[2]) if len(parts) == 3 else 1
        if parts[1] == "drop":
            return cls(route=parts[0], count=count, drop=True)
        return cls(route=parts[0], count=count, status=int(parts[1]))


@dataclass
class SandboxConfig:
    """Everything tunable. Defaults follow the contract except where tests need speed."""

    processing_delay: float = 2.0
    token_ttl: int = 3600
    refresh_ttl: int = 180 * 24 * 3600
    #: Every refresh answers with a new refresh token and the old one dies (Spotify may rotate;
    #: the tests that prove rotated tokens survive ephemeral machines rely on this).
    rotate_refresh_tokens: bool = True
    error_codes_key: str = "error_codes"
    rate_limit: int = 1500
    rate_window: float = 30.0
    session_ttl: float = 7 * 24 * 3600
    #: The next this-many upload sessions expire right after accepting their first chunk (the
    #: next request on them gets 404 NoSuchUpload), as a week-old or server-dropped one does.
    expire_sessions: int = 0
    request_timeout: float = 120.0
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    ad_account_ids: tuple[str, ...] = (SANDBOX_AD_ACCOUNT_ID,)
    faults: list[FaultRule] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy (the client secret is a published fake, so it may be shown)."""
        data = asdict(self)
        data["ad_account_ids"] = list(self.ad_account_ids)
        return data

    def update(self, changes: dict[str, Any]) -> None:
        """Apply knob changes from the admin endpoint; unknown names are a ValueError."""
        known = {f.name for f in fields(self)} - {"faults"}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown sandbox setting {name!r}")
            if name == "error_codes_key" and value not in ("error_codes", "errorCodes"):
                raise ValueError("error_codes_key must be 'error_codes' or 'errorCodes'")
            current = getattr(self, name)
            setattr(
                self, name, tuple(value) if isinstance(current, tuple) else type(current)(value)
            )


class Faults:
    """The live list of fault rules; ``take`` consumes one use of the first matching rule."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._lock = threading.Lock()

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._config.faults.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._config.faults.clear()

    def take(self, route: str, when: str) -> FaultRule | None:
        with self._lock:
            for rule in self._config.faults:
                wildcard = rule.route == "*" and route in ADS_ROUTES
                if (rule.route == route or wildcard) and rule.when == when:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._config.faults.remove(rule)
                    return rule
        return None
