"""Output files (``--output``, ``--report``, ``--rejects``): checked first, written atomically.

A run that cannot write its outputs must find out before it reads a row or sends a request, so
every path is checked up front (:func:`check_writable`). Each output is written to a hidden
partial file beside the target and renamed over it only when the whole run has succeeded
(:class:`AtomicFile`): a run that fails leaves no complete-looking output behind, and a reader
never sees half a file. Every failure is an :class:`OutputError` naming the flag and the path.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from spotify_audience_sync.errors import OutputError

__all__ = ["AtomicFile", "check_writable", "output_error"]


def output_error(flag: str, path: str | Path, exc: OSError) -> OutputError:
    """An OSError while writing ``path`` as a message a person can act on."""
    why = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.EISDIR: "it is a directory; give a file path",
        errno.ENOENT: "its folder does not exist",
    }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return OutputError(f"{flag} {path}: cannot be written: {why}")


def check_writable(path: str | Path, flag: str) -> None:
    """Fail at once if ``path`` cannot be created or replaced (``-`` is stdout: always fine)."""
    if str(path) == "-":
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise OutputError(f"{flag} {path}: is a directory; give a file path")
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: the folder {folder} is not writable (permission denied)")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{flag} {path}: exists and is not writable (permission denied)")


class AtomicFile:
    """A file written beside its target and renamed over it by :meth:`commit`.

    ``mode`` is set at creation, so the data is never readable by others even for a moment.
    Leaving the ``with`` block without :meth:`commit` (or on an error) deletes the partial file.
    """

    def __init__(self, path: str | Path, flag: str, *, mode: int = 0o600) -> None:
        self.path = Path(path)
        self.flag = flag
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        except OSError as exc:
            raise output_error(flag, path, exc) from exc
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        """Write, turning a full disk or a lost device into :class:`OutputError`."""
        try:
            self.file.write(data)
        except OSError as exc:
            raise output_error(self.flag, self.path, exc) from exc

    def close(self) -> None:
        """Flush and close (data reaches the disk: a crash after commit keeps it)."""
        if self.file.closed:
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as exc:
            self.file.close()
            raise output_error(self.flag, self.path, exc) from exc

    def commit(self) -> None:
        """Put the finished file in place of the target."""
        self.close()
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            raise output_error(self.flag, self.path, exc) from exc
        self._done = True

    def discard(self) -> None:
        """Forget the partial file (idempotent; a committed file stays)."""
        if self._done:
            return
        if not self.file.closed:
            self.file.close()
        self.partial.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()
