"""Where a scheduled sync keeps what makes it safe, chosen by the URL of the state setting.

A *state backend* keeps, per (ad account, audience), the last successful sync (counts and a
fingerprint: the skip and the shrink guard), one history row per run, and the lock that keeps
two runs of one audience apart. Two backends implement :class:`StateBackend`:

* a directory (``--state-dir``, or ``--state-url`` set to a path or ``file://``): JSON files,
  a JSONL history beside them, ``flock`` locks (``state.StateStore``). Right for one machine.
* ``postgresql://`` (``postgres.PostgresState``): tables the tool creates and migrates, and
  advisory locks held on the run's connection. Right for containers and pods with no volume,
  and for several machines: they all see one state, one history and one lock per audience.

Only ids, counts, sizes, fingerprints and statuses are kept: never an identifier, and a
refresh token only encrypted (``tokens``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from spotify_audience_sync.errors import ConfigError

if TYPE_CHECKING:
    from spotify_audience_sync.sync.state import SyncState

__all__ = [
    "CONFIG_REASONS",
    "RunRecord",
    "StateBackend",
    "StatusUpdate",
    "check_postgres_url",
    "is_database_url",
    "open_state",
    "redact",
]


@dataclass
class RunRecord:
    """One run of ``sync`` as history keeps it: ids, counts, timings and the outcome."""

    run_id: str
    started_at: str
    finished_at: str
    ad_account_id: str
    audience_id: str | None = None
    audience_name: str | None = None
    action: str | None = None
    identifiers: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    fingerprint: str | None = None
    status: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    exit_code: int = 0
    seconds: float = 0.0
    error: str | None = None
    status_checked_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StatusUpdate:
    """An audience's processing status read later (``status``), recorded against its last run."""

    ad_account_id: str
    audience_id: str
    status: str | None
    size_min: int | None
    size_max: int | None
    checked_at: str


class StateBackend(Protocol):
    """What Mirror sync and the history commands need from a place to keep state."""

    def describe(self) -> str:
        """Where the state lives, for messages (a database URL with its password masked)."""
        ...

    def load(self, ad_account_id: str, audience_id: str) -> SyncState | None:
        """The last successful sync, or None."""
        ...

    def save(self, state: SyncState) -> object:
        """Keep ``state`` as the audience's last successful sync."""
        ...

    def find_by_name(self, ad_account_id: str, audience_name: str) -> list[SyncState]:
        """States of audiences synced under this name, newest first."""
        ...

    def lock(self, ad_account_id: str, audience_ref: str) -> AbstractContextManager[Any]:
        """Hold the audience's lock for the block; SafetyError at once if another run has it."""
        ...

    def record_run(self, record: RunRecord) -> None:
        """Append one run to the history."""
        ...

    def history(
        self, ad_account_id: str, audience: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """Runs, newest first; ``audience`` is a name or an id."""
        ...

    def record_status(self, update: StatusUpdate) -> str | None:
        """Record a status read later against the audience's last upload; its run id or None."""
        ...

    def audiences(self, ad_account_id: str) -> list[SyncState]:
        """Every audience with a saved state, newest first."""
        ...

    def owned(self, ad_account_id: str, owner: str) -> list[SyncState]:
        """Audiences ``owner`` (or an owner a level below it) produced, newest first."""
        ...

    def forget(self, ad_account_id: str, audience_id: str) -> None:
        """Drop an audience's state (it was deleted on Spotify)."""
        ...

    def close(self) -> None: ...


def is_database_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("postgresql", "postgres") and "://" in url


def redact(url: str) -> str:
    """``scheme://user:***@host/db``: what messages may show of a state URL."""
    from spotify_audience_sync.redact import redact_url

    return redact_url(url) if "://" in url else url


#: libpq's sslmode values: any other is a typo that no retry will fix.
SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})

#: Words of a connection error that mean the URL itself is wrong (not that the server is away):
#: libpq's own option checks, and the server refusing a startup ``options`` setting.
CONFIG_REASONS = (
    "connection is bad: invalid",
    "invalid uri",
    "invalid value for parameter",
    "unrecognized configuration parameter",
    "authentication",
    "does not exist",
)


def check_postgres_url(url: str, shown: str) -> None:
    """Refuse a state URL that cannot work whatever the server does (exit 78, not 75).

    A malformed host (``[::1``), a port that is not a number and an unknown ``sslmode`` are
    typos: reported as retryable they would have a scheduler retry them forever.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"state URL {shown} is malformed ({exc}); check SPOTIFY_ADS_STATE_URL"
        ) from None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "sslmode" and value not in SSLMODES:
            raise ConfigError(
                f"state URL {shown}: sslmode must be one of {', '.join(sorted(SSLMODES))}"
            )


@contextmanager
def open_state(url: str) -> Iterator[StateBackend]:
    """The backend for ``url``: a directory path (or ``file://``), or ``postgresql://``."""
    backend: StateBackend
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if is_database_url(url):
        from spotify_audience_sync.sync.postgres import PostgresState

        backend = PostgresState(url)
    elif scheme in ("", "file"):
        from spotify_audience_sync.sync.state import StateStore

        backend = StateStore(url.removeprefix("file://") if scheme else url)
    else:
        raise ConfigError(
            f"state URL scheme {scheme!r} is not supported: use a directory or postgresql://"
            " (SPOTIFY_ADS_STATE_URL / --state-url)"
        )
    try:
        yield backend
    finally:
        backend.close()
