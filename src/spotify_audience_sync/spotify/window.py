"""A seekable, bounded view of a one-pass byte stream, for the resumable upload to rewind in.

The upload core reads with ``tell``/``read`` and rewinds with ``seek`` after a failure; the
window holds only the bytes GCS has not acknowledged yet plus the look-ahead asked for, so a
file of any size streams in bounded memory. It also computes the CRC32C of the stream, each
byte once and in order, for the integrity check against GCS's ``x-goog-hash``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator

import google_crc32c

__all__ = ["StreamWindow"]


class StreamWindow:
    """A seekable view of a one-pass stream, from the oldest unacknowledged byte onwards.

    The core reads with ``tell``/``read`` and rewinds with ``seek`` after a failure;
    ``release`` forgets acknowledged bytes. The CRC32C covers each byte once, in order.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._source: Iterator[bytes] = iter(chunks)
        self._buffer = bytearray()
        self._base = 0
        self._position = 0
        self._crc = 0
        self.exhausted = False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or not self._base <= offset <= self._base + len(self._buffer):
            raise ValueError(f"offset {offset} is outside the held bytes")
        self._position = offset
        return offset

    def ahead(self, wanted: int) -> int:
        """Pull pieces until ``wanted`` bytes follow the position (or the stream ends)."""
        held = self._base + len(self._buffer) - self._position
        while held < wanted and not self.exhausted:
            piece = next(self._source, None)
            if piece is None:
                self.exhausted = True
            elif piece:
                self._crc = google_crc32c.extend(self._crc, piece)
                self._buffer += piece
                held += len(piece)
        return held

    def read(self, size: int) -> bytes:
        self.ahead(size)
        start = self._position - self._base
        with memoryview(self._buffer) as view:  # one copy, not two
            data = bytes(view[start : start + size])
        self._position += len(data)
        return data

    def release(self, offset: int) -> None:
        drop = min(offset, self._position) - self._base
        if drop > 0:
            del self._buffer[:drop]
            self._base += drop

    def crc32c(self) -> str:
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()
