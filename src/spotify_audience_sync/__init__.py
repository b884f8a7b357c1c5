"""Keep a Spotify Ads Manager customer-list audience equal to a segment of your data.

The library under the CLI. The public names below load on first use (PEP 562), so importing
the package (as the CLI does for ``__version__``) costs nothing until something is used::

    from spotify_audience_sync import sync_audience

    report = sync_audience(frame, audience_name="CRM gold", default_region="US")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AdsClient": "spotify_audience_sync.spotify.client",
    "AuthError": "spotify_audience_sync.errors",
    "ConfigError": "spotify_audience_sync.errors",
    "IdentifierType": "spotify_audience_sync.identifiers.normalize",
    "InputError": "spotify_audience_sync.errors",
    "NormalizeOptions": "spotify_audience_sync.identifiers.normalize",
    "OAuthSession": "spotify_audience_sync.spotify.auth",
    "PrepareOptions": "spotify_audience_sync.segment.pipeline",
    "PreparedSegment": "spotify_audience_sync.segment.pipeline",
    "RemoteError": "spotify_audience_sync.errors",
    "SafetyError": "spotify_audience_sync.errors",
    "Settings": "spotify_audience_sync.settings",
    "StateStore": "spotify_audience_sync.sync.state",
    "SyncError": "spotify_audience_sync.errors",
    "SyncOptions": "spotify_audience_sync.sync.mirror",
    "SyncReport": "spotify_audience_sync.sync.mirror",
    "TransientError": "spotify_audience_sync.errors",
    "load_settings": "spotify_audience_sync.settings",
    "normalize_values": "spotify_audience_sync.identifiers.normalize",
    "prepare": "spotify_audience_sync.sync.api",
    "sync_audience": "spotify_audience_sync.sync.api",
    "Job": "spotify_audience_sync.sync.job",
    "JobEvent": "spotify_audience_sync.sync.events",
    "open_source": "spotify_audience_sync.segment.sources",
    "prepare_segment": "spotify_audience_sync.segment.pipeline",
    "run_sandbox": "spotify_audience_sync.sandbox",
    "upload_file": "spotify_audience_sync.spotify.upload",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spotify_audience_sync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
