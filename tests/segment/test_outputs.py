"""Output files: never replace a device or a FIFO, never overwrite the input, full disk is 73."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from spotify_audience_sync.errors import OutputError
from spotify_audience_sync.segment.outputs import AtomicFile, check_writable


def test_a_fifo_is_written_through_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening to write won't block
    try:
        with AtomicFile(fifo, "--output") as out:
            out.write(b"type,value\n")
            out.commit()
        assert os.read(reader, 100) == b"type,value\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the FIFO was replaced by a regular file"
    assert not (tmp_path / ".pipe.partial").exists()


def device(tmp_path: Path, name: str, minor: int) -> Path:
    """A private twin of /dev/null (minor 3) or /dev/full (minor 7): a test that fails must
    never replace the machine's own devices."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        os.close(os.open(path, os.O_WRONLY))
    except OSError:
        pytest.skip("cannot create a character device here (needs root and a dev mount)")
    return path


def test_a_null_device_stays_a_device(tmp_path: Path) -> None:
    null = device(tmp_path, "null", 3)
    before = null.stat()
    with AtomicFile(null, "--report", mode=0o644) as out:
        out.write(b"{}")
        out.commit()
    after = null.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_a_full_device_is_an_output_error_and_stays_a_device(tmp_path: Path) -> None:
    full = device(tmp_path, "full", 7)
    out = AtomicFile(full, "--output")
    out.write(b"x" * 100)  # buffered: the device says no when the data reaches it
    with pytest.raises(OutputError, match=r"--output .*full: cannot be written: the disk is full"):
        out.commit()
    out.discard()
    assert stat.S_ISCHR(full.stat().st_mode)


def test_the_input_itself_is_refused_through_a_symlink(tmp_path: Path) -> None:
    source = tmp_path / "segment.csv"
    source.write_text("email\n")
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    with pytest.raises(OutputError, match=r"--rejects .*link.csv: is the input file"):
        check_writable(link, "--rejects", inputs=(str(source),))
    check_writable(tmp_path / "other.csv", "--rejects", inputs=(str(source),))
    check_writable(link, "--rejects", inputs=(None, "-"))


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(OutputError, match="is a socket"):
            check_writable(path, "--report")
