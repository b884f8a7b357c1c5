"""The one timestamp format of state, history, reports and the sandbox: UTC to the second.

Written in one place so a state file, a history row and the emulator's answers cannot drift
apart (a PostgreSQL history and a directory history are compared by these strings).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["FORMAT", "utc_stamp"]

#: ISO 8601, UTC, whole seconds: ``2026-12-07T21:20:40Z``.
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_stamp(when: float | datetime | None = None) -> str:
    """``when`` (epoch seconds, an aware datetime, or now) in :data:`FORMAT`."""
    if when is None:
        return time.strftime(FORMAT, time.gmtime())
    if isinstance(when, datetime):
        return when.astimezone(UTC).strftime(FORMAT)
    return time.strftime(FORMAT, time.gmtime(when))
