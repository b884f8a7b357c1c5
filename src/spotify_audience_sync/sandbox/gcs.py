"""The emulated Google Cloud Storage side: resumable uploads to signed XML-API URLs.

Start with ``POST`` + ``x-goog-resumable: start`` (201 + ``Location``), then ``PUT`` the bytes
whole or in 256 KiB-multiple chunks (``Content-Range``; 308 + ``Range`` while incomplete), and
ask where the server is with ``Content-Range: bytes */*``. An ``Authorization`` header is an
extra signed header a real signed URL rejects: 403 ``SignatureDoesNotMatch``. ``DELETE`` on a
session cancels it (499; the session is gone). The completing answer carries ``x-goog-hash``.

Each session counts the body bytes it received and how many of them it already held, so tests
can prove a client never re-sent bytes GCS had acknowledged.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import google_crc32c

from spotify_audience_sync.sandbox.audiences import Audiences, UploadSlot
from spotify_audience_sync.sandbox.config import SandboxConfig
from spotify_audience_sync.sandbox.problem import Problem

__all__ = ["CHUNK_MULTIPLE", "MAX_FILE_BYTES", "Storage"]

CHUNK_MULTIPLE = 256 * 1024
MAX_FILE_BYTES = 1024**3
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


def _gcs(status: int, code: str, message: str) -> Problem:
    return Problem(status, message, code=code, kind="gcs")


_DIGESTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-gcs-digest")


@dataclass
class _Session:
    upload_id: str
    started: float
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    cancelled: bool = False
    received: int = 0
    """Body bytes that arrived, dropped connections included."""
    resent: int = 0
    """Received bytes at offsets the session already held (a client re-sending acked bytes)."""
    final_headers: dict[str, str] = field(default_factory=dict)
    md5: Any = field(default_factory=hashlib.md5)
    crc: int = 0
    digested: int = 0
    """Leading bytes handed to ``md5``/``crc`` (-1 once a rewrite made them stale).

    Each chunk is digested as it is persisted, on a background thread, rather than the whole
    object inside the final request: GCS answers at network speed, and an emulator that
    hashed 200 MB on the client's clock would make uploads look slower than they are."""
    folding: Future[None] | None = None

    def count(self, start: int, body: bytes) -> None:
        """Count arrived bytes; those at offsets already held count as resent."""
        self.received += len(body)
        self.resent += max(0, min(len(self.data), start + len(body)) - start)

    def store(self, start: int, body: bytes) -> None:
        self.count(start, body)
        self.overwrite(start, body)

    def overwrite(self, start: int, body: bytes) -> None:
        """Replace everything from ``start`` on with ``body``."""
        if start < self.digested:
            self.digested = -1
        self.data[start:] = body

    def truncate(self, size: int) -> None:
        if size < self.digested:
            self.digested = -1
        del self.data[size:]

    def digest(self) -> None:
        """Queue the bytes persisted since the last call for the running digests (in order:
        one background thread folds them)."""
        if 0 <= self.digested < len(self.data):
            with memoryview(self.data) as view:  # one copy, released before any resize
                fresh = bytes(view[self.digested :])
            self.digested = len(self.data)
            self.folding = _DIGESTER.submit(self._fold, fresh)

    def _fold(self, fresh: bytes) -> None:
        self.md5.update(fresh)
        self.crc = google_crc32c.extend(self.crc, fresh)

    def digests(self) -> tuple[bytes, bytes]:
        """CRC32C and MD5 of the whole object."""
        self.digest()
        if self.folding is not None:
            self.folding.result()  # the last one queued: every earlier one is done too
        if self.digested != len(self.data):  # a rewrite made the running ones stale
            whole = bytes(self.data)
            return google_crc32c.value(whole).to_bytes(4, "big"), hashlib.md5(whole).digest()
        return self.crc.to_bytes(4, "big"), self.md5.digest()

    def stats(self) -> dict[str, Any]:
        return {
            "persisted": len(self.data),
            "received": self.received,
            "resent": self.resent,
            "done": self.done,
            "cancelled": self.cancelled,
        }


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

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()

    def stats(self, upload_id: str) -> list[dict[str, Any]]:
        """Per session of ``upload_id``, in start order: persisted/received/resent bytes, state."""
        with self._lock:
            return [s.stats() for s in self._sessions.values() if s.upload_id == upload_id]

    def _session(self, upload_id: str, query: dict[str, str]) -> _Session:
        """The live session named by the URI (caller holds the lock); 404 when gone."""
        session = self._sessions.get(query.get("upload_id", ""))
        if session is None or session.upload_id != upload_id or session.cancelled:
            raise _gcs(404, "NoSuchUpload", "No such upload session.")
        if self._monotonic() - session.started > self._config.session_ttl:
            raise _gcs(404, "NoSuchUpload", "The upload session has expired.")
        return session

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
        self,
        upload_id: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        ack_bytes: int | None = None,
    ) -> tuple[int, dict[str, str]]:
        """One PUT to a session URI → (status, headers): 200 done, 308 keep going.

        ``ack_bytes`` (a fault knob) persists only that many bytes of this chunk and answers
        308 with the shorter ``Range``, as GCS may when it has not committed everything.
        """
        self._check_signature(upload_id, query, headers.get("authorization"))
        with self._lock:
            session = self._session(upload_id, query)
            if session.done:
                session.received += len(body)
                session.resent += len(body)
                return 200, dict(session.final_headers)
            status, extra = self._apply(session, headers.get("content-range"), body, ack_bytes)
            if status == 308 and self._config.expire_sessions > 0:
                self._config.expire_sessions -= 1
                session.started = -float("inf")  # past any TTL: the next request gets 404
        if status == 200:
            self._audiences.complete_upload(upload_id, bytes(session.data))
        return status, extra

    def receive_partial(
        self, upload_id: str, query: dict[str, str], headers: dict[str, str], prefix: bytes
    ) -> None:
        """The connection broke after ``prefix`` of a chunk: keep it up to a 256 KiB boundary.

        Like GCS, bytes that arrived are persisted in 256 KiB units; the client learns how many
        from the next status query. Invalid requests persist nothing.
        """
        self._check_signature(upload_id, query, headers.get("authorization"))
        match = _RANGE.fullmatch((headers.get("content-range") or "").strip())
        with self._lock:
            session = self._session(upload_id, query)
            start = int(match.group(1)) if match and match.group(1) is not None else 0
            if session.done or start > len(session.data):
                return
            session.count(start, prefix)
            end = (start + len(prefix)) // CHUNK_MULTIPLE * CHUNK_MULTIPLE
            if end > len(session.data):
                session.overwrite(start, prefix[: end - start])
                session.digest()

    def cancel(self, upload_id: str, query: dict[str, str], headers: dict[str, str]) -> int:
        """``DELETE`` on a session URI: 499 and the session is gone (nothing is completed)."""
        self._check_signature(upload_id, query, headers.get("authorization"))
        with self._lock:
            session = self._session(upload_id, query)
            if session.done:
                raise _gcs(409, "Conflict", "The upload is already complete.")
            session.cancelled = True
        return 499

    def _apply(
        self,
        session: _Session,
        content_range: str | None,
        body: bytes,
        ack_bytes: int | None,
    ) -> tuple[int, dict[str, str]]:
        if content_range is None:
            session.store(0, body)
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
            session.store(start, body)
            if ack_bytes is not None and ack_bytes < len(body):
                session.truncate(start + ack_bytes)
            session.digest()
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
        """Complete the object; like GCS, answer with its ETag and ``x-goog-hash`` (base64)."""
        crc, md5 = session.digests()
        session.done = True
        session.final_headers = {
            "ETag": f'"{md5.hex()}"',
            "x-goog-hash": (
                f"crc32c={base64.b64encode(crc).decode()},md5={base64.b64encode(md5).decode()}"
            ),
            "x-goog-stored-content-length": str(len(session.data)),
        }
        return 200, dict(session.final_headers)
