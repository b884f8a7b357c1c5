"""What the last successful sync of each audience left behind, and one run at a time per audience.

A small JSON file per (ad account, audience) holds counts and an order-independent fingerprint
of the uploaded set: never identifiers. It lets a scheduled run skip an upload that would change
nothing and refuse one that would silently shrink the audience. Files are written atomically
(temp file, fsync, rename) with mode 0600; a lock file held with ``flock`` keeps two runs of the
same audience apart (the lock dies with the process, so a crash never leaves a stale lock).

Beside the states, ``history.jsonl`` (0600, one JSON object per line, appended) keeps one line
per run and one per status read later by ``status``: the file backend of ``backend.StateBackend``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from spotify_audience_sync.errors import ConfigError, SafetyError
from spotify_audience_sync.settings import default_state_dir
from spotify_audience_sync.sync.backend import RunRecord, StatusUpdate

__all__ = ["StateStore", "SyncState", "default_state_dir"]


@dataclass
class SyncState:
    """The last successful sync of one audience."""

    ad_account_id: str
    audience_id: str
    audience_name: str
    synced_at: str
    identifiers: int
    counts: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    layout: str = "type-value"
    bytes: int = 0
    status: str | None = None
    #: The audience-column run or plan entry that produced the audience (``orphans``).
    owner: str | None = None
    #: The LOOKALIKE audience this run keeps seeded from it (``upkeep``).
    lookalike_id: str | None = None
    #: The staged records' multiset digest (``Stage.multiset_digest``): the next run streams
    #: its upload at once unless it staged the same, in which case it checks the exact
    #: fingerprint first and most likely skips without uploading.
    staged: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncState:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class StateStore:
    """State files and lock files under one directory (``--state-dir``)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_state_dir()

    def describe(self) -> str:
        return str(self.directory)

    def close(self) -> None:
        """Nothing to release: each lock is closed with its block."""

    def _account_dir(self, ad_account_id: str) -> Path:
        path = self.directory / _component(ad_account_id, "ad account id")
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"state dir {self.directory} is not usable ({exc.strerror}); "
                "set --state-dir / SPOTIFY_ADS_STATE_DIR"
            ) from exc
        return path

    def path(self, ad_account_id: str, audience_id: str) -> Path:
        """The state file of one audience."""
        return self._account_dir(ad_account_id) / f"{_component(audience_id, 'audience id')}.json"

    def load(self, ad_account_id: str, audience_id: str) -> SyncState | None:
        """The last successful sync, or None (never synced, or the file is unreadable)."""
        path = self.path(ad_account_id, audience_id)
        try:
            return SyncState.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"state file {path} is unreadable ({type(exc).__name__}); "
                "move it away to start afresh (the shrink guard then has no baseline)"
            ) from exc

    def find_by_name(self, ad_account_id: str, audience_name: str) -> list[SyncState]:
        """States of audiences synced under this name, newest first (unreadable ones skipped)."""
        found: list[SyncState] = []
        for path in self._account_dir(ad_account_id).glob("*.json"):
            try:
                state = SyncState.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            if state.audience_name == audience_name:
                found.append(state)
        return sorted(found, key=lambda s: s.synced_at, reverse=True)

    def save(self, state: SyncState) -> Path:
        """Write atomically, so a crash leaves the old state or the new one, never half.

        An ``owner`` or ``lookalike_id`` of None keeps the one saved before (as PostgreSQL's
        backend does): a plain Mirror sync does not know them and must not forget them."""
        path = self.path(state.ad_account_id, state.audience_id)
        if state.owner is None or state.lookalike_id is None:
            before = self._quiet_load(path)
            if before is not None:
                state = replace(
                    state,
                    owner=state.owner or before.owner,
                    lookalike_id=state.lookalike_id or before.lookalike_id,
                )
        partial = path.with_name(f".{path.name}.partial")
        data = (json.dumps(asdict(state), indent=2) + "\n").encode()
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ConfigError(f"cannot write state file {path} ({exc.strerror})") from exc
        return path

    @contextmanager
    def lock(self, ad_account_id: str, audience_ref: str) -> Iterator[Path]:
        """Hold the audience's lock for the block; refuse at once if another run holds it.

        ``audience_ref`` is what the user named (an id or a name), so two runs that would both
        create the same audience by name are kept apart too.
        """
        digest = hashlib.sha256(audience_ref.encode()).hexdigest()[:16]
        path = self._account_dir(ad_account_id) / f".lock-{digest}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                raise SafetyError(
                    f"another sync of this audience is running (pid {holder}); "
                    "nothing was changed: try again when it has finished"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield path
        finally:
            os.close(fd)

    # --- history ---------------------------------------------------------------------------
    def _history_path(self, ad_account_id: str) -> Path:
        return self._account_dir(ad_account_id) / "history.jsonl"

    def _append(self, ad_account_id: str, line: dict[str, Any]) -> None:
        path = self._history_path(ad_account_id)
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)  # one write of one line: appends from two runs never mix
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"cannot write history file {path} ({exc.strerror})") from exc

    def _lines(self, ad_account_id: str) -> list[dict[str, Any]]:
        try:
            text = self._history_path(ad_account_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        lines = []
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a torn last line after a crash: skip it, keep the rest
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def record_run(self, record: RunRecord) -> None:
        self._append(record.ad_account_id, {"kind": "run", **record.to_dict()})

    def record_status(self, update: StatusUpdate) -> str | None:
        runs = [
            r
            for r in self.history(update.ad_account_id, update.audience_id, limit=0)
            if r.action in ("created", "replaced")
        ]
        run_id = runs[0].run_id if runs else None
        self._append(update.ad_account_id, {"kind": "status", "run_id": run_id, **asdict(update)})
        state = self.load(update.ad_account_id, update.audience_id)
        if state is not None and update.status is not None:
            state.status = update.status
            self.save(state)
        return run_id

    def history(
        self, ad_account_id: str, audience: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """Runs, newest first, each with the latest status recorded against it."""
        runs: dict[str, RunRecord] = {}
        for line in self._lines(ad_account_id):
            if line.get("kind") == "run":
                record = RunRecord.from_dict(line)
                runs[record.run_id] = record
            elif line.get("kind") == "status" and line.get("run_id") in runs:
                record = runs[line["run_id"]]
                record.status = line.get("status")
                record.size_min, record.size_max = line.get("size_min"), line.get("size_max")
                record.status_checked_at = line.get("checked_at")
        found = [
            r
            for r in runs.values()
            if audience is None or audience in (r.audience_id, r.audience_name)
        ]
        found.sort(key=lambda r: r.started_at, reverse=True)
        return found[:limit] if limit else found

    @staticmethod
    def _quiet_load(path: Path) -> SyncState | None:
        try:
            return SyncState.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def audiences(self, ad_account_id: str) -> list[SyncState]:
        found = [
            state
            for path in self._account_dir(ad_account_id).glob("*.json")
            if (state := self._quiet_load(path)) is not None
        ]
        return sorted(found, key=lambda s: s.synced_at, reverse=True)

    def owned(self, ad_account_id: str, owner: str) -> list[SyncState]:
        """Audiences ``owner`` (or an owner a level below it) produced, newest first."""
        return [s for s in self.audiences(ad_account_id) if _owned_by(s.owner, owner)]

    def forget(self, ad_account_id: str, audience_id: str) -> None:
        """Drop an audience's state (it was deleted on Spotify)."""
        self.path(ad_account_id, audience_id).unlink(missing_ok=True)


#: What a file name may be built from: an id's letters, digits and dashes, no dot, no slash.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _component(value: str, what: str) -> str:
    """``value`` as one path component, or ConfigError: a path is never built from an id that
    could climb out of the state directory (``../../x``), whoever supplied it."""
    if not _SAFE_NAME.fullmatch(value):
        raise ConfigError(f"{what} is not a plain id: refusing to use it in a state file name")
    return value


def _owned_by(found: str | None, owner: str) -> bool:
    """``plan:a:b`` is owned by ``plan:a:b`` and by ``plan:a`` (see ``orphans.owner_key``)."""
    return found is not None and (found == owner or found.startswith(owner + ":"))
