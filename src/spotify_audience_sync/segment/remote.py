"""Inputs by URL: ``https://`` and ``http://`` (a signed URL a CDP hands over, say), ``s3://`` and
``gs://`` (the file a CDP drops in a bucket), streamed: never downloaded whole.

Each becomes a buffered binary stream that :mod:`.sources` reads like a local file (gzip is
found by its magic bytes, or the name's ``.gz``). The name a message shows is
:func:`~spotify_audience_sync.redact.mask_url` of the URL: scheme, host and path, never the
query string that carries a signature, nor a user:password.

* HTTP goes through httpx2 (the project's one HTTP stack): 120 s timeouts, connection errors
  and 5xx/429 retried (3 attempts, before any byte is read); a 404 is exit 66, other 4xx 65,
  what is still failing after the retries :class:`TransientError` (75).
* Buckets go through obstore (the ``[cloud]`` extra): one small Rust wheel (~15 MB, no
  dependencies) for S3, S3-compatible stores and GCS, which reads each provider's standard
  settings from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
  ``AWS_SESSION_TOKEN``/``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a compatible store,
  ``GOOGLE_APPLICATION_CREDENTIALS``). fsspec with s3fs and gcsfs would bring aiobotocore,
  botocore and google-auth (over 100 MB) for the same streaming read.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

from spotify_audience_sync.errors import ConfigError, InputError, InputNotFoundError, TransientError
from spotify_audience_sync.redact import guard_http_logs, mask_url

guard_http_logs()  # a signed input URL never reaches a log whole

__all__ = ["SCHEMES", "is_url", "open_url"]

SCHEMES = ("https://", "http://", "s3://", "gs://")
TIMEOUT_SECONDS = 120.0
ATTEMPTS = 3
CHUNK_BYTES = 1 << 20


def is_url(path: str) -> bool:
    """Whether ``path`` is an input URL (rather than a file path or ``-``)."""
    return path.lower().startswith(SCHEMES)


class _ChunkReader(io.RawIOBase):
    """A raw stream over an iterator of byte chunks; errors while reading are translated."""

    def __init__(self, chunks: Iterator[Any], name: str, close: Any = None) -> None:
        self._chunks = chunks
        self._name = name
        self._pending = memoryview(b"")
        self._on_close = close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:  # httpx2's or obstore's, mid-stream
                raise TransientError(
                    f"{self._name}: the download broke off ({type(exc).__name__})"
                ) from None
            self._pending = memoryview(bytes(chunk))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
        super().close()


def open_url(url: str) -> tuple[io.BufferedReader, str]:
    """A buffered binary stream of the object at ``url``, and the name messages show."""
    name = mask_url(url)
    if url.lower().startswith(("https://", "http://")):
        raw = _open_http(url, name)
    else:
        raw = _open_bucket(url, name)
    return io.BufferedReader(raw, buffer_size=CHUNK_BYTES), name


# --- HTTP -------------------------------------------------------------------------------------
def _open_http(url: str, name: str) -> _ChunkReader:
    import httpx2

    client = httpx2.Client(
        timeout=httpx2.Timeout(TIMEOUT_SECONDS),
        transport=httpx2.HTTPTransport(retries=ATTEMPTS - 1),  # connection errors
        follow_redirects=True,
    )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = client.send(client.build_request("GET", url), stream=True)
        except httpx2.TransportError as exc:
            client.close()
            raise TransientError(f"{name}: cannot be downloaded ({type(exc).__name__})") from None
        status = response.status_code
        if status < 400:
            break
        response.close()
        if (status >= 500 or status == 429) and attempt < ATTEMPTS:
            time.sleep(min(2.0**attempt, 10.0))
            continue
        client.close()
        raise _http_error(name, status)

    def done() -> None:
        response.close()
        client.close()

    return _ChunkReader(response.iter_raw(CHUNK_BYTES), name, done)


def _http_error(name: str, status: int) -> Exception:
    if status == 404:
        return InputNotFoundError(f"{name}: not found (HTTP 404)")
    if status in (401, 403):
        return InputError(f"{name}: access denied (HTTP {status}); is the signed URL expired?")
    if status >= 500 or status == 429:
        return TransientError(f"{name}: the server failed (HTTP {status})", status=status)
    return InputError(f"{name}: cannot be downloaded (HTTP {status})")


# --- S3 and GCS -------------------------------------------------------------------------------
def _open_bucket(url: str, name: str) -> _ChunkReader:
    scheme, rest = url.split("://", 1)
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ConfigError(f"{name}: a bucket URL is {scheme}://BUCKET/PATH/TO/FILE")
    try:
        import obstore
        from obstore.store import from_url
    except ModuleNotFoundError:
        raise ConfigError(
            f"{name}: reading {scheme}:// needs the cloud extra (obstore is not installed): "
            "pip install 'spotify-audience-sync[cloud]'"
        ) from None
    from obstore import exceptions

    try:
        # obstore's own client settings (30 s per request, retried with backoff for up to
        # 180 s), read with the credentials from the environment: client_options here would
        # replace the environment's (AWS_ALLOW_HTTP for a plain-http compatible store).
        store = from_url(f"{scheme}://{bucket}")
        result = obstore.get(store, key)
    except (exceptions.NotFoundError, FileNotFoundError):  # obstore raises the builtin
        raise InputNotFoundError(f"{name}: no such object") from None
    except (
        exceptions.PermissionDeniedError,
        exceptions.UnauthenticatedError,
        PermissionError,
    ) as exc:
        raise InputError(f"{name}: access denied ({type(exc).__name__})") from None
    except (exceptions.UnknownConfigurationKeyError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot be opened ({type(exc).__name__})") from None
    except (exceptions.BaseError, OSError) as exc:
        raise TransientError(f"{name}: cannot be downloaded ({type(exc).__name__})") from None
    return _ChunkReader(iter(result.stream(min_chunk_size=CHUNK_BYTES)), name)
