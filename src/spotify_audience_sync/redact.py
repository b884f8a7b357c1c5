"""The one place that decides how much of a secret may be shown: tokens, signed URLs, database
URLs, and the text a driver echoed them in.

A root module beside ``errors`` (it imports nothing of ours and nothing heavy) so that
``segment`` (warehouse and URL inputs), ``spotify`` (tokens, upload URLs) and ``sync`` (state
URLs) mask the same way without importing each other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

__all__ = ["guard_http_logs", "mask", "mask_url", "redact_url", "scrubber"]

_SHOWN = 4
_SECRET_PARAMS = re.compile(r"pass|pwd|secret|token|key", re.I)


def mask(secret: str | None) -> str:
    """Show the first four characters then an ellipsis: enough to tell two tokens apart."""
    if not secret:
        return "<none>"
    return secret[:_SHOWN] + "…"


def mask_url(url: str) -> str:
    """Keep scheme, host and path of a (signed) URL; drop the query that carries the signature
    (and any user:password in the host part)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    shown = f"{parts.scheme}://{host}{parts.path}"
    return shown + ("?…" if parts.query else "")


def redact_url(url: str) -> str:
    """``scheme://user:***@host/db``: a database URL with its password and secret parameters
    masked (its other parameters, a schema say, stay readable)."""
    if "://" not in url:
        return "<database URL without a scheme>"
    scheme, rest = url.split("://", 1)
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"{user}@{host}"
    pairs = [pair.partition("=") for pair in query.split("&")] if query else []
    query = "&".join(
        f"{key}{eq}{'***' if _SECRET_PARAMS.search(key) and value else value}"
        for key, eq, value in pairs
    )
    return f"{scheme}://{netloc}{slash}{path}{question}{query}{hash_mark}{fragment}"


def scrubber(url: str) -> Callable[[str], str]:
    """A function that removes ``url`` and its password from a driver's message, however the
    driver echoed them (whole, or the password alone, quoted or not)."""
    secrets = [url]
    if "://" in url:
        try:
            password = urlsplit(url).password
        except ValueError:  # a malformed port: no password to find
            password = None
        if password:
            secrets += [password, unquote(password)]
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return scrub


class _HttpLogFilter(logging.Filter):
    """httpx2 logs every request's full URL at INFO: a signed upload URL, a webhook URL. Where
    a library user turns INFO on, only scheme and host may show."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("://" in str(a) for a in record.args):
            record.args = tuple(_host_only(a) for a in record.args)
        return True


def _host_only(value: object) -> object:
    text = str(value)
    if "://" not in text:
        return value
    parts = urlsplit(text)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


def guard_http_logs() -> None:
    """Attach the filter to httpx2's logger, once (every module that sends calls it)."""
    logger = logging.getLogger("httpx2")
    if not any(isinstance(f, _HttpLogFilter) for f in logger.filters):
        logger.addFilter(_HttpLogFilter())
