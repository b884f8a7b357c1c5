"""Text encodings of an input: UTF-8 is read as is; any other codec is transcoded as it streams.

The reader and polars see UTF-8 only. ``--encoding NAME`` (any codec Python knows) puts an
incremental decoder between the byte stream and the chunker, so a CP1252 or UTF-16 export is
read in bounded memory like any other file, and its records parse exactly as the UTF-8 file's
would. Without the flag, a UTF-16 or UTF-32 file (by its byte-order mark, or by the NUL bytes
every ASCII character brings along) is named as such instead of failing as "not UTF-8".
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from typing import BinaryIO

from spotify_audience_sync.errors import InputError

__all__ = [
    "NOT_UTF8",
    "read_failure",
    "sniff_wide_encoding",
    "transcoded",
]

NOT_UTF8 = (
    "is not valid UTF-8 (from Windows or Excel? pass --encoding cp1252; "
    "else perhaps --encoding latin-1)"
)
_BLOCK = 1 << 20
_BOMS = [  # longest first: the UTF-32-LE mark begins with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian)", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)", "utf-16"),
]


def sniff_wide_encoding(head: bytes) -> tuple[str, str] | None:
    """(description, flag value) when ``head`` starts a UTF-16 or UTF-32 text, else None.

    A byte-order mark decides; without one, the NUL bytes that pad ASCII characters do: in
    the first 64 bytes, NULs at every other position (UTF-16) or three in four (UTF-32).
    """
    for mark, what, flag in _BOMS:
        if head.startswith(mark):
            return what, flag
    sample = head[:64]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    for size, flag, what in ((4, "utf-32", "UTF-32"), (2, "utf-16", "UTF-16")):
        sample = sample[: len(sample) // size * size]
        nul = [lane.count(0) / len(lane) for lane in (sample[i::size] for i in range(size))]
        if nul[0] < 0.2 and all(n > 0.8 for n in nul[1:]):
            return f"{what} (little-endian)", f"{flag}-le"
        if nul[-1] < 0.2 and all(n > 0.8 for n in nul[:-1]):
            return f"{what} (big-endian)", f"{flag}-be"
    return None


def read_failure(exc: BaseException) -> str:
    """Why a stream could not be read, in words (a gzip error's class name says nothing)."""
    if isinstance(exc, EOFError):
        return "the gzip stream is truncated (it ends before its end marker)"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "not a valid gzip stream (corrupt data)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class _Transcoder(io.RawIOBase):
    """A byte stream in ``encoding`` read as UTF-8, a block at a time."""

    def __init__(self, stream: BinaryIO, encoding: str, name: str) -> None:
        self._stream, self._encoding, self._name = stream, encoding, name
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending = b""
        self._lines = 0  # newlines handed out so far: the line a decode error is on
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._fill()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self) -> None:
        block = self._stream.read(_BLOCK)
        self._done = not block
        try:
            text = self._decoder.decode(block, final=self._done)
            self._pending = text.encode("utf-8")
        except UnicodeError as exc:  # decode errors, and the codecs' bare UnicodeError (BOM)
            raise InputError(
                f"{self._name}: line {self._error_line(exc)} is not valid {self._encoding} "
                "(check the --encoding value)"
            ) from None
        self._lines += text.count("\n")

    def _error_line(self, exc: UnicodeError) -> int:
        """The 1-based line a decode error is on (the block's first line when unknown)."""
        if not isinstance(exc, UnicodeDecodeError):
            return self._lines + 1
        try:
            good = codecs.decode(exc.object[: exc.start], self._encoding, "ignore")
        except UnicodeError:
            return self._lines + 1
        return self._lines + good.count("\n") + 1

    def close(self) -> None:
        self._stream.close()
        super().close()


def transcoded(stream: BinaryIO, encoding: str, name: str) -> BinaryIO:
    """``stream`` decoded from ``encoding`` and re-encoded as UTF-8, streamed."""
    return io.BufferedReader(_Transcoder(stream, encoding, name), _BLOCK)
