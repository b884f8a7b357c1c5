"""Output files (``--output``, ``--report``, ``--rejects``): checked first, written atomically.

A run that cannot write its outputs must find out before it reads a row or sends a request, so
every path is checked up front (:func:`check_writable`). Each output is written to a hidden
partial file beside the target and renamed over it only when the whole run has succeeded
(:class:`AtomicFile`): a run that fails leaves no complete-looking output behind, and a reader
never sees half a file. Every failure is an :class:`OutputError` naming the flag and the path.

Two things are never replaced. A path that exists and is not a regular file (``/dev/null``, a
FIFO, a terminal) is written through, as the shell's ``>`` would: renaming over it would turn
the system's ``/dev/null`` into a world-readable file of hashes. And an output that is the input
itself (same device and inode, symlinks followed) is refused before a row is read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from spotify_audience_sync.errors import OutputError

__all__ = ["AtomicFile", "StreamTarget", "check_writable", "output_error"]


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


def check_writable(
    path: str | Path, flag: str, *, inputs: Iterable[str | Path | None] = ()
) -> None:
    """Fail at once if ``path`` cannot be written, or is one of ``inputs`` (``-`` is stdout).

    Called before anything is read: an output that is the input would destroy the segment
    while it is being read, so the same file (by device and inode) is refused, not truncated.
    """
    if str(path) == "-":
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise OutputError(f"{flag} {path}: is a directory; give a file path")
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: the folder {folder} does not exist")
    try:
        status = target.stat()
    except OSError:
        status = None
    if status is not None and stat.S_ISSOCK(status.st_mode):
        raise OutputError(f"{flag} {path}: is a socket; give a file path")
    if status is not None:
        for source in inputs:
            if source is not None and str(source) != "-" and _same_file(status, source):
                raise OutputError(
                    f"{flag} {path}: is the input file {source}; writing it would destroy "
                    "the segment: give another path"
                )
    if status is not None and not stat.S_ISREG(status.st_mode):
        if not os.access(target, os.W_OK):
            raise OutputError(f"{flag} {path}: exists and is not writable (permission denied)")
        return  # a device or a FIFO is written through: its folder need not be writable
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: the folder {folder} is not writable (permission denied)")
    if status is not None and not os.access(target, os.W_OK):
        raise OutputError(f"{flag} {path}: exists and is not writable (permission denied)")


def _same_file(status: os.stat_result, other: str | Path) -> bool:
    """Whether ``other`` (symlinks followed) is the file ``status`` describes."""
    try:
        theirs = os.stat(other)
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (status.st_dev, status.st_ino)


def _is_special(path: Path) -> bool:
    """An existing path that is not a regular file: written through, never renamed over."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


class AtomicFile:
    """A file written beside its target and renamed over it by :meth:`commit`.

    ``mode`` is set at creation, so the data is never readable by others even for a moment.
    Leaving the ``with`` block without :meth:`commit` (or on an error) deletes the partial file.
    A target that exists and is not a regular file (a device, a FIFO) is written through
    instead, never replaced: there is nothing to rename and nothing to delete.
    """

    def __init__(self, path: str | Path, flag: str, *, mode: int = 0o600) -> None:
        self.path = Path(path)
        self.flag = flag
        self.through = _is_special(self.path)
        self.partial = (
            self.path if self.through else self.path.with_name(f".{self.path.name}.partial")
        )
        flags = os.O_WRONLY if self.through else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            fd = os.open(self.partial, flags, mode)
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
            if not self.through:  # a pipe or a device has no disk to sync
                os.fsync(self.file.fileno())
            self.file.close()
        except OSError as exc:
            with contextlib.suppress(OSError):  # the buffer's flush fails again; fd still closes
                self.file.close()
            raise output_error(self.flag, self.path, exc) from exc

    def commit(self) -> None:
        """Put the finished file in place of the target."""
        self.close()
        if self.through:
            self._done = True
            return
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
            # A full device refusing the last flush: the run has failed already.
            with contextlib.suppress(OSError):
                self.file.close()
        if not self.through:
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


class StreamTarget:
    """An open stream (stdout for ``-o -``) whose write errors are :class:`OutputError` too.

    After a failure the stream's descriptor is pointed at ``/dev/null``: the interpreter's own
    flush at exit would otherwise fail a second time and turn exit 73 into 120.
    """

    def __init__(self, stream: BinaryIO, flag: str, name: str = "<stdout>") -> None:
        self.stream = stream
        self.flag = flag
        self.name = name

    def write(self, data: bytes) -> None:
        """Write, mapping a full disk or a closed pipe to :class:`OutputError`."""
        try:
            self.stream.write(data)
        except OSError as exc:
            raise self._failed(exc) from exc

    def flush(self) -> None:
        """Flush, with the same mapping."""
        try:
            self.stream.flush()
        except OSError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> OutputError:
        # Not a real descriptor (a test's buffer): nothing will flush it again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        return output_error(self.flag, self.name, exc)
