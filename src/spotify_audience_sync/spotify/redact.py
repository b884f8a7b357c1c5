"""Masking of tokens and signed URLs: :mod:`spotify_audience_sync.redact`, re-exported here for
the modules of ``spotify/`` that import it by this name."""

from __future__ import annotations

from spotify_audience_sync.redact import mask, mask_url

__all__ = ["mask", "mask_url"]
