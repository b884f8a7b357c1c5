"""The emulated Google Cloud Storage side: resumable uploads to signed XML-API URLs.

Start with ``POST`` + ``x-goog-resumable: start`` (201 + ``Location``), then ``PUT`` the bytes
whole or in 256 KiB-multiple chunks (``Content-Range``; 308 + ``Range`` while incomplete), and
ask where the server is with ``Content-Range: bytes */*``. An ``Authorization`` header is an
extra signed header a real signed URL rejects: 403 ``SignatureDoesNotMatch``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spotify_audience_sync.sandbox.audiences import Audiences, UploadSlot
from spotify_audience_sync.sandbox.config import SandboxConfig
from spotify_audience_sync.sandbox.problem import Problem

__all__ = ["CHUNK_MULTIPLE", "MAX_FILE_BYTES", "Storage"]

CHUNK_MULTIPLE = 256 * 1024
MAX_FILE_BYTES = 1024**3
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


def _gcs(status: int, code: str, message: str) -> Problem:
    return Problem(status, message, code=code, kind="gcs")


@dataclass
class _Session:
    upload_id: str
    started: float
    data: bytearray = field(default_factory=bytearray)
    done: bool = False


class Storage:
    """Upload sessions keyed by id; completed files are handed to ``Audiences``."""

    def __init__(
        self,
        audiences: Audiences,
        config: SandboxConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audiences = audiences
        self._config = config
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def _check_signature(
        self, upload_id: str, query: dict[str, str], auth: str | None
    ) -> UploadSlot:
        slot = self._audiences.slot(upload_id)
        if slot is None:
            raise _gcs(404, "NoSuchUpload", "The requested upload URL does not exist.")
        given = query.get("X-Goog-Signature", "")
        if auth is not None or not secrets.compare_digest(given, slot.signature):
            raise _gcs(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return slot

    def start(
        self, upload_id: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> str:
        """Open a session and return its id (the caller builds the ``Location`` URL)."""
        self._check_signature(upload_id, query, headers.get("authorization"))
        if headers.get("x-goog-resumable") != "start":
            raise _gcs(400, "InvalidArgument", "Expected x-goog-resumable: start.")
        if body:
            raise _gcs(400, "InvalidArgument", "The resumable start request must have no body.")
        if not headers.get("content-type", "").startswith("text/csv"):
            raise _gcs(403, "SignatureDoesNotMatch", "Content-Type must be the signed text/csv.")
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[session_id] = _Session(upload_id, self._monotonic())
        return session_id

    def put(
        self, upload_id: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        """One PUT to a session URI → (status, headers): 200 done, 308 keep going."""
        self._check_signature(upload_id, query, headers.get("authorization"))
        with self._lock:
            session = self._sessions.get(query.get("upload_id", ""))
            if session is None or session.upload_id != upload_id:
                raise _gcs(404, "NoSuchUpload", "No such upload session.")
            if self._monotonic() - session.started > self._config.session_ttl:
                raise _gcs(404, "NoSuchUpload", "The upload session has expired.")
            if session.done:
                return 200, {}
            status, extra = self._apply(session, headers.get("content-range"), body)
        if status == 200:
            self._audiences.complete_upload(upload_id, bytes(session.data))
        return status, extra

    def _apply(
        self, session: _Session, content_range: str | None, body: bytes
    ) -> tuple[int, dict[str, str]]:
        if content_range is None:
            session.data[:] = body
            return self._finish(session)
        match = _RANGE.fullmatch(content_range.strip())
        if match is None:
            raise _gcs(400, "InvalidArgument", "Malformed Content-Range.")
        first, last, total_text = match.groups()
        total = None if total_text == "*" else int(total_text)
        if first is not None:
            start, end = int(first), int(last)
            if end - start + 1 != len(body):
                raise _gcs(400, "InvalidArgument", "Content-Range does not match the body length.")
            if start > len(session.data):
                raise _gcs(400, "InvalidArgument", "Chunk starts beyond the persisted bytes.")
            final = total is not None and end + 1 == total
            if not final and len(body) % CHUNK_MULTIPLE:
                raise _gcs(400, "InvalidArgument", "Non-final chunks must be multiples of 256 KiB.")
            session.data[start:] = body
            if len(session.data) > MAX_FILE_BYTES:
                raise _gcs(400, "EntityTooLarge", "Files are limited to 1 GiB.")
        if total is not None and len(session.data) == total:
            return self._finish(session)
        if total is not None and len(session.data) > total:
            raise _gcs(400, "InvalidArgument", "More bytes than the declared total.")
        headers = {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}
        return 308, headers

    @staticmethod
    def _finish(session: _Session) -> tuple[int, dict[str, str]]:
        session.done = True
        return 200, {"ETag": f'"{secrets.token_hex(16)}"'}
