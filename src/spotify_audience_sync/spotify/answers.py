"""What an Ads API answer may carry, checked where it enters: ids, upload hosts, sizes, pages.

An answer is input from the network, and a hostile or broken one must not steer the run: an
id becomes a file name (the state file), an upload URL receives the whole hashed file, and a
body or a page list that never ends would hold the run's memory or time. Each rule here turns
such an answer into a :class:`~spotify_audience_sync.errors.RemoteError` (exit 69) before
anything acts on it, and its message names the host or the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx2

from spotify_audience_sync.errors import RemoteError
from spotify_audience_sync.settings import DEFAULT_API_BASE_URL

__all__ = [
    "GCS_HOST",
    "MAX_ANSWER_BYTES",
    "MAX_PAGES",
    "check_upload_url",
    "is_uuid",
    "origin",
    "read_capped",
    "upload_origins",
]

#: Google's upload host; signed URLs for buckets also come as ``BUCKET.storage.googleapis.com``.
GCS_HOST = "storage.googleapis.com"
#: An audience, a page of 50 or an upload URL is a few kB: a few MB is plenty.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: 50 audiences a page: 100,000 audiences, far past any ad account, before paging stops.
MAX_PAGES = 2000


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: object) -> bool:
    """A UUID in its 8-4-4-4-12 text form: what Spotify's ids are, and all a file name may be."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased, without the default port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1  # not a port: matches no allowed origin
    default = {"https": 443, "http": 80}.get(scheme)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def upload_origins(api_base_url: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Origins an upload URL may point at besides Google's: the API's own when it is not
    Spotify's (the sandbox serves both), and those listed in SPOTIFY_ADS_UPLOAD_ORIGINS."""
    allowed = {origin(item) for item in extra if item.strip()}
    if api_base_url.rstrip("/") != DEFAULT_API_BASE_URL:
        allowed.add(origin(api_base_url))
    return frozenset(allowed)


def check_upload_url(url: str, allowed: frozenset[str], what: str) -> None:
    """Refuse an upload URL on a host we do not send data to (before a byte is sent)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    found = origin(url)
    google = found == f"https://{GCS_HOST}" or (
        found.startswith("https://") and found.endswith("." + GCS_HOST) and ":" not in found[8:]
    )
    if google or found in allowed:
        return
    raise RemoteError(
        f"{what}: the upload URL points at {parts.scheme or '?'}://{host or '?'}, not at Google "
        f"Cloud Storage ({GCS_HOST}): refused, nothing was sent. If this host is yours, list "
        "its origin in SPOTIFY_ADS_UPLOAD_ORIGINS"
    )


def read_capped(response: httpx2.Response, what: str, limit: int = MAX_ANSWER_BYTES) -> None:
    """Read a streamed answer's body, refusing one larger than ``limit`` (decoded) bytes.

    The declared length is checked first, then the bytes as they arrive: a gzip bomb or a body
    that never ends stops at the limit instead of taking the run's memory.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_big(response, what, limit)
    parts: list[bytes] = []
    size = 0
    for part in response.iter_bytes():
        size += len(part)
        if size > limit:
            raise _too_big(response, what, limit)
        parts.append(part)
    response._content = b"".join(parts)


def _too_big(response: httpx2.Response, what: str, limit: int) -> RemoteError:
    return RemoteError(
        f"{what}: the answer is larger than {limit // (1024 * 1024)} MB "
        f"(HTTP {response.status_code}); refused",
        status=response.status_code,
    )
