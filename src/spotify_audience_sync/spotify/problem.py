"""What Spotify says when it refuses: its ErrorResponse body read into a RemoteError.

One reader for every module that meets a Spotify refusal (the client maps statuses with it; the
bearer layer takes the ``sp_trace_id`` of a second 401 from it). It is tolerant of the body's
spellings (``error_codes`` / ``errorCodes``) and of bodies that are not JSON at all.
"""

from __future__ import annotations

import httpx2

from spotify_audience_sync.errors import RemoteError

__all__ = ["remote_error"]


def remote_error(response: httpx2.Response, what: str) -> RemoteError:
    """Build RemoteError from an ErrorResponse body, tolerant of its spellings and of non-JSON."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    trace = body.get("sp_trace_id") or response.headers.get("sp-trace-id")
    messages = body.get("messages") or []
    if not isinstance(messages, list):
        messages = [messages]
    raw_codes = body.get("error_codes") or body.get("errorCodes") or []
    codes = tuple(
        str(c.get("code")) if isinstance(c, dict) else str(c)
        for c in (raw_codes if isinstance(raw_codes, list) else [raw_codes])
    )
    detail = "; ".join(str(m)[:200] for m in messages) or response.reason_phrase
    text = f"{what}: Spotify answered HTTP {response.status_code}: {detail}"
    if codes:
        text += f" (codes: {', '.join(codes)})"
    if response.status_code == 403:
        text += " — check access to the ad account and that the Ads API terms are accepted"
    if trace:
        text += f" [sp_trace_id={trace}]"
    return RemoteError(text, status=response.status_code, trace_id=trace, codes=codes)
