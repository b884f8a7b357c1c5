"""Masking of secrets (tokens, signed URLs) before they reach a log, an error or a screen.

One place decides how much of a secret may be shown, so every module masks the same way.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

__all__ = ["mask", "mask_url", "password_in_url", "warn_password_option"]

log = logging.getLogger(__name__)

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


def password_in_url(url: str | None) -> bool:
    """Whether a URL (``--database-url``, ``--state-url``) carries a password."""
    if not url or "://" not in url:
        return False
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def warn_password_option(_ctx: Any, param: Any, value: str | None) -> str | None:
    """A click option callback (light: no settings import): a password on the command line
    shows in ``ps`` and shell history, so name the variable that should carry the URL."""
    if password_in_url(value):
        flag = max(getattr(param, "opts", None) or ["the URL flag"], key=len)
        variable = "SPOTIFY_ADS_" + str(getattr(param, "name", "") or "url").upper()
        log.warning(
            "%s carries a password, which other users can see in the process list and shell "
            "history; set %s in the environment instead",
            flag,
            variable,
        )
    return value
