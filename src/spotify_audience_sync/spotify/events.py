"""Structured log records: what the CLI turns into JSON events (retries, waits, resumes).

The library reports through :mod:`logging`, so it stays usable without the CLI; a record made
with ``extra=event(name, **fields)`` carries its event name and fields, which the CLI's handler
emits as a JSON line (level warning) instead of a line of text. Fields are counts, names and
status codes: never a token, a signed URL or a value.
"""

from __future__ import annotations

from typing import Any

__all__ = ["event"]


def event(name: str, **fields: Any) -> dict[str, Any]:
    """The ``extra`` of a log record that the CLI shows as the event ``name``."""
    return {"event": name, "fields": fields}
