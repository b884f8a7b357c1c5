"""The token file: 0600 in a 0700 directory, replaced atomically, shared under a file lock.

Permissions are treated as ssh treats a private key: parent directories are created 0700
whatever the umask; a token file that group or others can read, or a directory others can
write, is tightened with a warning when it is ours and refused (ConfigError, 78) when it is
not. Runs on one machine that share the file take its lock (``flock`` on a ``.lock`` file
beside it) to refresh one at a time: the others then find the new tokens in the file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from spotify_audience_sync.errors import AuthError, ConfigError, TransientError
from spotify_audience_sync.spotify.bearer import LOGIN_HINT
from spotify_audience_sync.spotify.credentials import TokenSet

__all__ = ["LOCK_TIMEOUT", "TokenStore", "private_dir"]

log = logging.getLogger(__name__)

#: Seconds a run waits for another one's refresh before giving up (TransientError, 75).
LOCK_TIMEOUT = 120.0


def _mine(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid()


def _check_dir(path: Path) -> None:
    """Tighten our directory that others can write; refuse someone else's."""
    info = path.stat()
    if not info.st_mode & 0o022 or info.st_mode & stat.S_ISVTX:
        return  # private, or sticky (/tmp): nobody else can replace our files there
    if not _mine(info):
        raise ConfigError(
            f"token directory {path} is writable by others and not yours: not keeping tokens "
            "there; point SPOTIFY_ADS_TOKEN_STORE at a private directory"
        )
    log.warning("token directory %s was writable by others; tightened it to 0700", path)
    os.chmod(path, 0o700)


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents 0700 (whatever the umask), then check it."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another run made it meanwhile
        os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
    _check_dir(path)


class TokenStore:
    """The token file. Created 0600 in a 0700 directory; replaced atomically on each save."""

    durable = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()

    def describe(self) -> str:
        return f"the token file {self.path}"

    def _check_file(self) -> None:
        """A token file others can read is tightened (ours) or refused (someone else's)."""
        info = self.path.stat()
        if not info.st_mode & 0o077:
            return
        if not _mine(info):
            raise ConfigError(
                f"token file {self.path} is readable by others and not yours: refusing it; "
                f"remove it and {LOGIN_HINT}"
            )
        log.warning("token file %s was readable by others; tightened it to 0600", self.path)
        os.chmod(self.path, 0o600)

    def load(self) -> TokenSet | None:
        try:
            self._check_file()
            _check_dir(self.path.parent)
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return TokenSet(**data)
        except (FileNotFoundError, NotADirectoryError):  # no file there (yet)
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise AuthError(f"token store {self.path} is unreadable; {LOGIN_HINT}") from exc

    def save(self, tokens: TokenSet) -> None:
        """Replace the file; refuse to replace a login issued by another token endpoint (the
        sandbox's tokens must never land on a real login, nor the reverse)."""
        try:
            held = self.load()
        except AuthError:
            held = None  # unreadable: replacing it is the repair
        if held is not None and held.token_url and tokens.token_url not in (None, held.token_url):
            raise ConfigError(
                f"token store {self.path} holds a login from {held.token_url}; not replacing it "
                f"with tokens from {tokens.token_url}: point SPOTIFY_ADS_TOKEN_STORE at a file "
                "of its own for this service"
            )
        private_dir(self.path.parent)
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(tokens), handle)
        os.replace(temp, self.path)
        os.chmod(self.path, 0o600)

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[object]:
        """Hold the file's lock (other runs on this machine refresh one at a time).

        Where no lock file can be made (a read-only directory) there is nothing to share
        either: the block runs unlocked.
        """
        try:
            private_dir(self.path.parent)
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except (FileExistsError, NotADirectoryError, PermissionError, OSError) as exc:
            log.debug("token file %s: no lock (%s)", self.path, exc)
            yield None
            return
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TransientError(
                            f"another run held the lock of {self.path} for {timeout:.0f} s "
                            "while refreshing the token"
                        ) from None
                    time.sleep(0.02)
            yield fd
        finally:
            os.close(fd)
