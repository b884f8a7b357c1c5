"""Masking of tokens and signed URLs (:mod:`spotify_audience_sync.redact`, re-exported here for
the modules of ``spotify/`` that import it by this name), and the warning about a password
given on the command line."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from spotify_audience_sync.redact import mask, mask_url

__all__ = ["mask", "mask_url", "password_in_url", "warn_password_option"]

log = logging.getLogger(__name__)


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
