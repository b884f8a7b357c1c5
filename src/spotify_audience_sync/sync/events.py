"""What a run tells its caller: one callback of :class:`JobEvent`, and a progress ``Phase``.

Kept apart from :mod:`.job` so what only reads a segment (`prepare`) loads no Spotify client.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobEvent", "Phase"]

#: ``phase(name, total=None, unit="rows")``: a context yielding ``update(completed)``.
Phase = Callable[..., AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class JobEvent:
    """Something that happened in a run. ``fields`` are counts, ids and codes, never a value.

    ``labels`` say which audience of a run of many it is about (``sync_name``, ``value``);
    ``text`` is the line a person reads for it, where there is one.
    """

    name: str
    fields: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
