"""Resumable upload of a streamed file to a signed GCS URL (XML API), over httpx2.

google-resumable-media's sans-I/O core decides what each request says; this module sends them
and adds what the core lacks for signed XML-API URLs (see ``libraries.md``): the
``x-goog-resumable: start`` header on the initiation only, an empty initiation body, retries
that resume from the committed offset, a CRC32C check against ``x-goog-hash``, and cancelling
the session when anything fails before the object is complete, so no partial file is ever used.
Which answers are retried and how long to wait is not decided here: ``retry`` owns that, for
this module and the API client alike; this module owns only its schedule's numbers.

Memory stays bounded: the byte stream is read lazily through a ``window.StreamWindow`` that
holds what GCS has not acknowledged yet plus one chunk of look-ahead, never the whole file.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx2
from google.resumable_media import common
from google.resumable_media._upload import ResumableUpload

from spotify_audience_sync.errors import (
    ConfigError,
    InputError,
    RemoteError,
    TransientError,
    UploadSessionLostError,
)
from spotify_audience_sync.redact import guard_http_logs
from spotify_audience_sync.spotify.events import event
from spotify_audience_sync.spotify.redact import mask_url
from spotify_audience_sync.spotify.retry import RetryPolicy, Verdict, classify
from spotify_audience_sync.spotify.window import StreamWindow

guard_http_logs()  # signed URLs never reach a log whole

__all__ = ["CHUNK_MULTIPLE", "DEFAULT_CHUNK_SIZE", "UploadResult", "upload_file"]

log = logging.getLogger(__name__)

CHUNK_MULTIPLE = 256 * 1024
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MAX_RETRY_AFTER = 120.0
"""A 429 asking for a longer wait fails the upload instead of hanging the sync."""


def _policy(max_attempts: int) -> RetryPolicy:
    """The upload's schedule: steps of 1, 2, 4 … s up to 32 s (chunks are worth waiting for)."""
    return RetryPolicy(
        attempts=max_attempts, base_delay=1.0, max_delay=32.0, max_wait=MAX_RETRY_AFTER
    )


_SENT_HEADERS = frozenset(
    {"host", "content-type", "content-length", "content-range", "x-goog-resumable"}
    | {"user-agent", "accept", "accept-encoding", "connection"}
)
"""Everything else is dropped: a signed URL refuses extra headers, and no Spotify header
(``Authorization`` above all) may ever reach Google, whatever client the caller passes."""


@dataclass(frozen=True)
class UploadResult:
    """What one upload cost; ``bytes_resent`` counts bytes carried by more than one request."""

    bytes_sent: int
    requests: int
    resumes: int
    bytes_resent: int
    seconds: float


class _Upload(ResumableUpload):
    """The core, adapted to signed XML-API URLs and to a stream whose end is found by reading."""

    def __init__(self, upload_url: str, chunk_size: int, window: StreamWindow) -> None:
        super().__init__(upload_url, chunk_size)  # type: ignore[no-untyped-call]
        self.window = window
        self.final = False
        """Whether the request last prepared completes the object."""

    @staticmethod
    def _get_status_code(response: httpx2.Response) -> int:
        # The XML API completes with 200, the JSON API with 201; the core only knows 200.
        return 200 if response.status_code == 201 else response.status_code

    @staticmethod
    def _get_headers(response: httpx2.Response) -> httpx2.Headers:
        return response.headers

    def initiate_request(self, total: int | None) -> tuple[str, str, bytes, dict[str, str]]:
        method, url, _, _ = self._prepare_initiate_request(  # type: ignore[no-untyped-call]
            self.window, {}, "text/csv", total_bytes=total, stream_final=False
        )
        # Exactly what the URL was signed for: no JSON metadata, no x-upload-* headers.
        return method, url, b"", {"Content-Type": "text/csv", "x-goog-resumable": "start"}

    def started(self, response: httpx2.Response) -> None:
        self._process_initiate_response(response)  # type: ignore[no-untyped-call]

    def _prepare_request(self) -> tuple[str, str, bytes, dict[str, str]]:
        start, size, total = self.window.tell(), self.chunk_size, self.total_bytes
        held = self.window.ahead(size + 1)  # one byte more tells a full last chunk from the rest
        if total is None and self.window.exhausted and held <= size:
            total = self._total_bytes = start + held
        elif total is not None and (
            held < min(total - start, size) or (total - start <= size and held > total - start)
        ):
            raise InputError(
                f"the upload stream and its declared size disagree ({total} bytes declared, "
                f"{'more' if held > total - start else 'fewer'} produced)"
            )
        self.final = total is not None and start + size >= total
        if total is not None and start == total > 0:  # GCS holds every byte but no object yet
            headers = {"Content-Type": "text/csv", "Content-Range": f"bytes */{total}"}
            return "PUT", self.resumable_url, b"", headers
        method, url, payload, headers = super()._prepare_request()  # type: ignore[no-untyped-call]
        return method, url, payload, dict(headers)

    def _process_resumable_response(self, response: httpx2.Response, bytes_sent: int) -> None:
        if response.status_code == 308 and "range" not in response.headers:
            self._process_recover_response(response)  # nothing persisted: start over
            return
        super()._process_resumable_response(response, bytes_sent)  # type: ignore[no-untyped-call]
        if not self.finished:  # GCS may keep less than sent: re-send only the rest
            self.window.seek(self.bytes_uploaded)
            self.window.release(self.bytes_uploaded)

    def recover_request(self) -> tuple[str, str, None, dict[str, str]]:
        # The core's ``bytes */*`` is a pure status query; ``*/total`` may itself complete the
        # object, and only a request that passed before_finalize may do that.
        return self._prepare_recover_request()  # type: ignore[no-any-return,no-untyped-call]

    def _process_recover_response(self, response: httpx2.Response) -> None:
        super()._process_recover_response(response)  # type: ignore[no-untyped-call]
        self.window.release(self.bytes_uploaded)

    def complete(self, total: int) -> None:
        """A status query found the object complete (the final chunk's answer was lost)."""
        self._bytes_uploaded, self._finished = total, True


def _gcs_error(response: httpx2.Response, what: str) -> RemoteError:
    """RemoteError from GCS's XML error body: status and code, never the signed URL."""
    code = re.search(r"<Code>([^<]{1,100})</Code>", response.text)
    found = re.search(r"<Message>([^<]{1,300})</Message>", response.text)
    message = re.sub(r"https?://\S+", lambda m: mask_url(m[0]), found[1] if found else "")
    detail = f"GCS refused it: {message or response.reason_phrase}"
    if response.status_code in (404, 410):
        detail = "the upload session expired or was cancelled; start a new upload"
    codes = (code[1],) if code else ()
    label = "".join(f" {c}" for c in codes)
    kind = UploadSessionLostError if response.status_code in (404, 410) else RemoteError
    return kind(
        f"{what}: HTTP {response.status_code}{label} — {detail}",
        status=response.status_code,
        codes=codes,
    )


@dataclass
class _Transfer:
    """One upload session: sends what the core prepares, retries, resumes, cancels."""

    http: httpx2.Client
    core: _Upload
    timeout: httpx2.Timeout
    policy: RetryPolicy
    sleep: Callable[[float], None]
    jitter: Callable[[], float]
    on_progress: Callable[[int], None] | None
    before_finalize: Callable[[int], None] | None
    checkpoint: Callable[[], None] | None = None
    requests: int = 0
    resumes: int = 0
    resent: int = 0
    failures: int = 0
    sent_high: int = 0
    approved: bool = False

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> httpx2.Response:
        if self.checkpoint is not None and method != "DELETE":  # a cancel always goes out
            self.checkpoint()
        request = self.http.build_request(
            method, url, content=body, headers=headers, timeout=self.timeout
        )
        for name in [n for n in request.headers if n.lower() not in _SENT_HEADERS]:
            del request.headers[name]
        self.requests += 1
        return self.http.send(request, auth=None, follow_redirects=False)

    def fail(self, what: str, reason: str, response: httpx2.Response | None = None) -> None:
        """Count a failed attempt; wait before the next one, or give up."""
        self.failures += 1
        acked = f"GCS holds {self.core.bytes_uploaded} of {self.core.total_bytes or '?'} bytes"
        wait = self.policy.wait(self.failures, response, self.jitter)
        why = self.policy.give_up(self.failures, wait)
        if why is not None:
            raise TransientError(
                f"{what} failed {self.failures} times in a row (last: {reason}; {why}); {acked}"
            )
        log.warning(
            "%s: %s (attempt %d); retrying in %.1f s; %s", what, reason, self.failures, wait, acked,
            extra=event("retry", what=what, reason=reason, attempt=self.failures,
                        wait_seconds=round(wait, 3), bytes_acknowledged=self.core.bytes_uploaded),
        )  # fmt: skip
        self.sleep(wait)

    def attempt(
        self, what: str, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> httpx2.Response | None:
        """One request; None after a retryable failure (already counted and waited for).

        Every upload request is resendable: the protocol resumes from what GCS committed.
        """
        try:
            response = self.send(method, url, body, headers)
        except httpx2.TransportError as exc:
            self.fail(what, type(exc).__name__)
            return None
        if classify(response, resendable=True) is Verdict.RETRY:
            self.fail(what, f"HTTP {response.status_code}", response)
            return None
        return response

    def initiate(self, total: int | None) -> None:
        request = self.core.initiate_request(total)
        response = None
        while response is None:
            response = self.attempt("upload start", *request)
        if response.status_code not in (200, 201):
            raise _gcs_error(response, "upload start")
        if "location" not in response.headers:
            raise RemoteError(
                f"upload start: GCS answered HTTP {response.status_code} without a Location "
                "header: no session started; nothing uploaded",
                status=response.status_code,
            )
        self.core.started(response)
        self.failures = 0
        log.info("upload session started for %s", mask_url(self.core.upload_url))

    def step(self) -> httpx2.Response | None:
        """Send the next chunk; the completing response once the object is done."""
        before = self.core.bytes_uploaded
        method, url, payload, headers = self.core._prepare_request()
        if self.core.final and not self.approved:
            self.approved = True
            if self.before_finalize is not None:
                self.before_finalize(self.core.total_bytes)
        end = before + len(payload)
        self.resent += max(0, min(self.sent_high, end) - before)
        self.sent_high = max(self.sent_high, end)
        response = self.attempt("chunk upload", method, url, payload, headers)
        if response is None:
            return self.recover()
        if response.status_code not in (200, 201, 308):
            raise _gcs_error(response, "chunk upload")
        self.process(self.core._process_resumable_response, response, len(payload))
        log.debug("sent bytes %d-%d; GCS holds %d", before, end - 1, self.core.bytes_uploaded)
        if self.core.bytes_uploaded > before or self.core.finished:
            self.failures = 0
            if self.on_progress is not None:
                self.on_progress(self.core.bytes_uploaded)
        else:
            self.fail("chunk upload", "GCS acknowledged none of the chunk")
        return response if self.core.finished else None

    def recover(self) -> httpx2.Response | None:
        """Ask the session where it is and rewind there; the response if it is complete."""
        self.resumes += 1
        response = None
        while response is None:
            response = self.attempt("upload status query", *self.core.recover_request())
        if response.status_code in (200, 201) and self.approved:
            self.core.complete(self.core.total_bytes)
            return response
        if response.status_code != 308:
            raise _gcs_error(response, "upload status query")
        self.process(self.core._process_recover_response, response)
        log.warning(
            "resuming at byte %d", self.core.bytes_uploaded,
            extra=event("resume", bytes_acknowledged=self.core.bytes_uploaded),
        )  # fmt: skip
        return None

    @staticmethod
    def process(handler: Callable[..., None], response: httpx2.Response, *args: int) -> None:
        try:
            handler(response, *args)
        except (common.InvalidResponse, ValueError) as exc:
            raise RemoteError(
                "chunk upload: GCS reported an offset the upload cannot resume from "
                f"(HTTP {response.status_code}, Range {response.headers.get('range')!r})",
                status=response.status_code,
            ) from exc

    def cancel(self) -> None:
        """Best effort: DELETE the session so no object is ever completed from it."""
        url = self.core.resumable_url
        if url is None or self.core.finished:
            return
        try:
            status = self.send("DELETE", url, None, {}).status_code
            log.info("upload session cancelled (HTTP %d)", status)
        except Exception as exc:  # cleanup must never mask the error that caused it
            log.warning("could not cancel the upload session: %s", type(exc).__name__)

    def verify(self, response: httpx2.Response) -> None:
        """Compare GCS's CRC32C (and stored size) of the object with what we streamed."""
        hashes: dict[str, str] = {}
        for part in response.headers.get_list("x-goog-hash", split_commas=True):
            name, _, value = part.strip().partition("=")  # base64 padding keeps its '='
            hashes[name.lower()] = value
        stored = response.headers.get("x-goog-stored-content-length")
        total = self.core.total_bytes
        ours = self.core.window.crc32c()
        if hashes.get("crc32c", ours) != ours or stored not in (None, str(total)):
            raise RemoteError(
                f"upload integrity check failed: GCS stored {stored or '?'} bytes with "
                f"crc32c={hashes.get('crc32c')}, we sent {total} with crc32c={ours}; "
                "the uploaded file must not be used",
                status=response.status_code,
                codes=("CRC32C_MISMATCH",),
            )


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
        raise ConfigError(
            f"upload chunk size must be a positive multiple of 256 KiB ({CHUNK_MULTIPLE} "
            f"bytes), got {chunk_size}: set --chunk-size / SPOTIFY_ADS_UPLOAD_CHUNK_SIZE"
        )


def upload_file(
    upload_url: str,
    chunks: Iterable[bytes],
    *,
    total_bytes: int | None = None,
    client: httpx2.Client | None = None,
    transport: httpx2.BaseTransport | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: float = 120.0,
    max_attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    on_progress: Callable[[int], None] | None = None,
    before_finalize: Callable[[int], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> UploadResult:
    """Upload ``chunks`` (the file, in pieces of any size) to a signed GCS upload URL.

    ``before_finalize(total)`` runs before the request that would complete the object; if it
    raises, the session is cancelled and the exception propagates. Any failure after the
    session started cancels it too. ``checkpoint()`` runs before each request (a plan's stop:
    it raises once the run is told to stop, and the upload ends there, its session cancelled).
    ``max_attempts`` counts failed requests in a row; ``sleep`` and ``jitter`` (a float in
    [0, 1)) are injectable for tests.
    Raises ConfigError, RemoteError, TransientError, InputError.
    """
    _check_chunk_size(chunk_size)
    if client is not None and transport is not None:
        raise ValueError("pass a client or a transport, not both")
    started = time.monotonic()
    http = client or httpx2.Client(transport=transport, timeout=timeout, follow_redirects=False)
    core = _Upload(upload_url, chunk_size, StreamWindow(chunks))
    run = _Transfer(
        http,
        core,
        httpx2.Timeout(timeout),
        _policy(max_attempts),
        sleep,
        jitter,
        on_progress,
        before_finalize,
        checkpoint,
    )
    try:
        run.initiate(total_bytes)
        try:
            final = None
            while final is None:
                final = run.step()
            run.verify(final)
        except BaseException:
            run.cancel()
            raise
    finally:
        if client is None:
            http.close()
    seconds = time.monotonic() - started
    result = UploadResult(core.bytes_uploaded, run.requests, run.resumes, run.resent, seconds)
    log.info("upload complete: %s", result)
    return result
