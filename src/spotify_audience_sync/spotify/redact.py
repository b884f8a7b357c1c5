"""Masking of secrets (tokens, signed URLs) before they reach a log, an error or a screen.

One place decides how much of a secret may be shown, so every module masks the same way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["mask", "mask_url"]

_SHOWN = 4


def mask(secret: str | None) -> str:
    """Show the first four characters then an ellipsis: enough to tell two tokens apart."""
    if not secret:
        return "<none>"
    return secret[:_SHOWN] + "…"


def mask_url(url: str) -> str:
    """Keep scheme, host and path of a (signed) URL; drop the query that carries the signature."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return shown + ("?…" if parts.query else "")
