"""The state backend for ``postgresql://``: state, history, locks and tokens in one database.

For runs on machines that share no disk (a CronJob's pods, a CDP's containers): the database
a team already has keeps what a state directory keeps on one machine.

* Tables live in one schema (``spotify_audience_sync`` unless the URL says ``?schema=NAME``),
  created and migrated by the tool. ``schema_version`` holds the version; migrations run in one
  transaction under an advisory lock, so two first runs cannot race, and a schema newer than
  this tool knows is refused (ConfigError) instead of being written by an older version.
* The lock of an audience is a session-level advisory lock held on this backend's connection
  for the run: two runs of one audience on two machines cannot overlap, and a run that dies
  releases its lock with its connection (no stale lock, no expiry to tune).
* A login's token refresh takes an advisory lock of its own (``token_lock``): parallel runs
  refresh once between them, and the rest re-read the token the first one stored.
* The connection is in autocommit: each save or history row is durable when the call returns.

The URL's password never leaves this module: messages show ``redact(url)`` and driver messages
are scrubbed of it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from spotify_audience_sync.errors import ConfigError, SafetyError, TransientError
from spotify_audience_sync.sync.backend import (
    CONFIG_REASONS,
    RunRecord,
    StatusUpdate,
    check_postgres_url,
    redact,
)
from spotify_audience_sync.sync.state import SyncState
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresState"]

DEFAULT_SCHEMA = "spotify_audience_sync"
SCHEMA_VERSION = 3

#: Migration n takes the schema from version n-1 to n. ``{s}`` is the schema, quoted.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE {s}.audience_state (
            ad_account_id text NOT NULL,
            audience_id text NOT NULL,
            audience_name text NOT NULL,
            synced_at timestamptz NOT NULL,
            identifiers bigint NOT NULL,
            counts jsonb NOT NULL DEFAULT '{{}}',
            fingerprint text NOT NULL DEFAULT '',
            layout text NOT NULL DEFAULT 'type-value',
            bytes bigint NOT NULL DEFAULT 0,
            status text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (ad_account_id, audience_id))""",
        "CREATE INDEX audience_state_name ON {s}.audience_state (ad_account_id, audience_name)",
        """CREATE TABLE {s}.runs (
            run_id text PRIMARY KEY,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            ad_account_id text NOT NULL,
            audience_id text,
            audience_name text,
            action text,
            identifiers bigint NOT NULL DEFAULT 0,
            counts jsonb NOT NULL DEFAULT '{{}}',
            bytes bigint NOT NULL DEFAULT 0,
            fingerprint text,
            status text,
            size_min bigint,
            size_max bigint,
            exit_code integer NOT NULL,
            seconds double precision NOT NULL,
            error text,
            status_checked_at timestamptz)""",
        "CREATE INDEX runs_audience ON {s}.runs (ad_account_id, audience_id, started_at DESC)",
        """CREATE TABLE {s}.tokens (
            name text PRIMARY KEY,
            ciphertext text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now())""",
    ),
    2: (
        "ALTER TABLE {s}.audience_state ADD COLUMN owner text, ADD COLUMN lookalike_id text",
        "CREATE INDEX audience_state_owner ON {s}.audience_state (ad_account_id, owner)",
    ),
    3: ("ALTER TABLE {s}.audience_state ADD COLUMN staged text NOT NULL DEFAULT ''",),
}

_STATE_COLUMNS = (
    "ad_account_id, audience_id, audience_name, synced_at, identifiers, counts, fingerprint, "
    "layout, bytes, status, owner, lookalike_id, staged"
)
_RUN_COLUMNS = (
    "run_id, started_at, finished_at, ad_account_id, audience_id, audience_name, action, "
    "identifiers, counts, bytes, fingerprint, status, size_min, size_max, exit_code, seconds, "
    "error, status_checked_at"
)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_stamp(value)
    return str(value)


def _key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts``."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def split_url(url: str) -> tuple[str, str]:
    """(the URL psycopg connects to, the schema): ``?schema=`` is ours, not libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    # quote, not quote_plus: libpq reads '+' as a plus, so "-c a=b" must stay "-c%20a%3Db".
    rest = urlencode([(k, v) for k, v in query if k != "schema"], quote_via=quote)
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


class PostgresState:
    """State, history, locks and encrypted tokens in a PostgreSQL schema."""

    def __init__(self, url: str) -> None:
        import psycopg
        from psycopg import sql

        self._url = url
        self._shown = redact(url)
        check_postgres_url(url, self._shown)
        conninfo, self.schema = split_url(url)
        if not self.schema or len(self.schema) > 63:
            raise ConfigError("state URL: ?schema= must be 1 to 63 characters")
        self._schema = sql.Identifier(self.schema)
        password = urlsplit(url).password
        self._secrets = [p for p in (password, unquote(password or "")) if p]
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=10,
                application_name="spotify-audience-sync",
            )
        except psycopg.Error as exc:
            reason = self._scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            message = f"state database {self._shown} is not reachable ({reason})"
            lowered = reason.lower()
            if isinstance(exc, psycopg.ProgrammingError) or any(
                words in lowered for words in CONFIG_REASONS
            ):
                raise ConfigError(message + "; check SPOTIFY_ADS_STATE_URL") from None
            raise TransientError(message) from None
        self._held: dict[int, int] = {}
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # --- plumbing ----------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _sql(self, text: str) -> sql.Composed:
        from psycopg import sql

        return sql.SQL(text).format(s=self._schema)

    def _run(self, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement; driver errors become ours, without the password."""
        import psycopg

        try:
            with self._conn.cursor() as cursor:
                cursor.execute(self._sql(text), params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError as exc:
            raise TransientError(
                f"state database {self._shown}: {self._scrub(str(exc).splitlines()[0])}"
            ) from None
        except psycopg.Error as exc:
            raise ConfigError(
                f"state database {self._shown}: {self._scrub(str(exc).splitlines()[0])}"
            ) from None

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`; refuse one newer than this tool."""
        import psycopg

        try:
            with self._conn.transaction(), self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_key("migrate", self.schema),))
                cursor.execute(self._sql("CREATE SCHEMA IF NOT EXISTS {s}"))
                cursor.execute(
                    self._sql(
                        "CREATE TABLE IF NOT EXISTS {s}.schema_version ("
                        "version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())"
                    )
                )
                cursor.execute(self._sql("SELECT max(version) FROM {s}.schema_version"))
                row = cursor.fetchone()
                current = int(row[0]) if row and row[0] is not None else 0
                if current > SCHEMA_VERSION:
                    raise ConfigError(
                        f"state database {self._shown}: schema {self.schema} is at version "
                        f"{current}, newer than this tool knows ({SCHEMA_VERSION}); upgrade "
                        "spotify-audience-sync (nothing was changed)"
                    )
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version]:
                        cursor.execute(self._sql(statement))
                    cursor.execute(
                        self._sql("INSERT INTO {s}.schema_version (version) VALUES (%s)"),
                        (version,),
                    )
        except psycopg.Error as exc:
            raise ConfigError(
                f"state database {self._shown}: cannot create or migrate schema {self.schema} "
                f"({self._scrub(str(exc).splitlines()[0])})"
            ) from None

    def describe(self) -> str:
        return self._shown

    def close(self) -> None:
        """Close the connection: every lock it held is released with it."""
        self._conn.close()

    def version(self) -> int:
        rows = self._run("SELECT max(version) FROM {s}.schema_version")
        return int(rows[0][0])

    # --- state -------------------------------------------------------------------------------
    @staticmethod
    def _state(row: tuple[Any, ...]) -> SyncState:
        account, audience, name, synced, identifiers, counts, fingerprint, layout, size, status = (
            row[:10]
        )
        owner, lookalike_id, staged = row[10:13]
        return SyncState(
            ad_account_id=account,
            audience_id=audience,
            audience_name=name,
            synced_at=_iso(synced) or "",
            identifiers=int(identifiers),
            counts=dict(counts or {}),
            fingerprint=fingerprint,
            layout=layout,
            bytes=int(size),
            status=status,
            owner=owner,
            lookalike_id=lookalike_id,
            staged=staged,
        )

    def load(self, ad_account_id: str, audience_id: str) -> SyncState | None:
        rows = self._run(
            f"SELECT {_STATE_COLUMNS} FROM {{s}}.audience_state "
            "WHERE ad_account_id = %s AND audience_id = %s",
            (ad_account_id, audience_id),
        )
        return self._state(rows[0]) if rows else None

    def save(self, state: SyncState) -> str:
        self._run(
            f"INSERT INTO {{s}}.audience_state ({_STATE_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (ad_account_id, audience_id) DO UPDATE SET "
            "audience_name = EXCLUDED.audience_name, synced_at = EXCLUDED.synced_at, "
            "identifiers = EXCLUDED.identifiers, counts = EXCLUDED.counts, "
            "fingerprint = EXCLUDED.fingerprint, layout = EXCLUDED.layout, "
            "bytes = EXCLUDED.bytes, status = EXCLUDED.status, "
            "owner = COALESCE(EXCLUDED.owner, {s}.audience_state.owner), "
            "lookalike_id = COALESCE(EXCLUDED.lookalike_id, {s}.audience_state.lookalike_id), "
            "staged = EXCLUDED.staged, updated_at = now()",
            (
                state.ad_account_id,
                state.audience_id,
                state.audience_name,
                state.synced_at,
                state.identifiers,
                json.dumps(state.counts),
                state.fingerprint,
                state.layout,
                state.bytes,
                state.status,
                state.owner,
                state.lookalike_id,
                state.staged,
            ),
        )
        return self._shown

    def find_by_name(self, ad_account_id: str, audience_name: str) -> list[SyncState]:
        rows = self._run(
            f"SELECT {_STATE_COLUMNS} FROM {{s}}.audience_state "
            "WHERE ad_account_id = %s AND audience_name = %s ORDER BY synced_at DESC",
            (ad_account_id, audience_name),
        )
        return [self._state(row) for row in rows]

    def audiences(self, ad_account_id: str) -> list[SyncState]:
        rows = self._run(
            f"SELECT {_STATE_COLUMNS} FROM {{s}}.audience_state "
            "WHERE ad_account_id = %s ORDER BY synced_at DESC",
            (ad_account_id,),
        )
        return [self._state(row) for row in rows]

    def owned(self, ad_account_id: str, owner: str) -> list[SyncState]:
        """Audiences ``owner`` (or an owner a level below it) produced, newest first."""
        rows = self._run(
            f"SELECT {_STATE_COLUMNS} FROM {{s}}.audience_state "
            "WHERE ad_account_id = %s AND (owner = %s OR starts_with(owner, %s)) "
            "ORDER BY synced_at DESC",
            (ad_account_id, owner, owner + ":"),
        )
        return [self._state(row) for row in rows]

    def forget(self, ad_account_id: str, audience_id: str) -> None:
        """Drop an audience's state (it was deleted on Spotify)."""
        self._run(
            "DELETE FROM {s}.audience_state WHERE ad_account_id = %s AND audience_id = %s",
            (ad_account_id, audience_id),
        )

    @contextmanager
    def lock(self, ad_account_id: str, audience_ref: str) -> Iterator[int]:
        """An advisory lock on this connection for the block; SafetyError if another has it."""
        key = _key(self.schema, ad_account_id, audience_ref)
        if self._held.get(key):  # the same run asks again (by name, then by id): reentrant
            self._held[key] += 1
        else:
            (got,) = self._run("SELECT pg_try_advisory_lock(%s)", (key,))[0]
            if not got:
                raise SafetyError(
                    "another sync of this audience is running (it holds the audience's lock in "
                    f"the state database {self._shown}); nothing was changed: try again when it "
                    "has finished"
                )
            self._held[key] = 1
        try:
            yield key
        finally:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
                if not self._conn.closed:
                    # If the connection is gone, the lock went with it.
                    with suppress(TransientError, ConfigError):
                        self._run("SELECT pg_advisory_unlock(%s)", (key,))

    # --- history -----------------------------------------------------------------------------
    def record_run(self, record: RunRecord) -> None:
        r = record
        self._run(
            f"INSERT INTO {{s}}.runs ({_RUN_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (run_id) DO NOTHING",
            (
                r.run_id,
                r.started_at,
                r.finished_at,
                r.ad_account_id,
                r.audience_id,
                r.audience_name,
                r.action,
                r.identifiers,
                json.dumps(r.counts),
                r.bytes,
                r.fingerprint,
                r.status,
                r.size_min,
                r.size_max,
                r.exit_code,
                r.seconds,
                r.error,
                r.status_checked_at,
            ),
        )

    def history(
        self, ad_account_id: str, audience: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        rows = self._run(
            f"SELECT {_RUN_COLUMNS} FROM {{s}}.runs WHERE ad_account_id = %s "
            "AND (%s::text IS NULL OR audience_id = %s OR audience_name = %s) "
            "ORDER BY started_at DESC, finished_at DESC LIMIT %s",
            (ad_account_id, audience, audience, audience, limit or None),
        )
        names = [c.strip() for c in _RUN_COLUMNS.split(",")]
        records = []
        for row in rows:
            data = dict(zip(names, row, strict=True))
            for name in ("started_at", "finished_at", "status_checked_at"):
                data[name] = _iso(data[name])
            data["counts"] = dict(data["counts"] or {})
            records.append(RunRecord.from_dict(data))
        return records

    def record_status(self, update: StatusUpdate) -> str | None:
        rows = self._run(
            "UPDATE {s}.runs SET status = %s, size_min = %s, size_max = %s, "
            "status_checked_at = %s WHERE run_id = ("
            "SELECT run_id FROM {s}.runs WHERE ad_account_id = %s AND audience_id = %s "
            "AND action IN ('created', 'replaced') ORDER BY started_at DESC LIMIT 1) "
            "RETURNING run_id",
            (
                update.status,
                update.size_min,
                update.size_max,
                update.checked_at,
                update.ad_account_id,
                update.audience_id,
            ),
        )
        if update.status is not None:
            self._run(
                "UPDATE {s}.audience_state SET status = %s, updated_at = now() "
                "WHERE ad_account_id = %s AND audience_id = %s",
                (update.status, update.ad_account_id, update.audience_id),
            )
        return str(rows[0][0]) if rows else None

    # --- tokens (ciphertext only: ``tokens.DatabaseTokens`` encrypts) -------------------------
    def load_token(self, name: str) -> str | None:
        rows = self._run("SELECT ciphertext FROM {s}.tokens WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    @contextmanager
    def token_lock(self, name: str, timeout: float = 120.0) -> Iterator[int]:
        """An advisory lock for one login's refresh, so runs that share this database refresh
        one at a time (the others re-read the token it stored). Polled with a try-lock so the
        connection stays free for the run's other threads while it waits."""
        key = _key("token", self.schema, name)
        deadline = time.monotonic() + timeout
        while not self._run("SELECT pg_try_advisory_lock(%s)", (key,))[0][0]:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"another run held the token lock in the state database {self._shown} for "
                    f"{timeout:.0f} s"
                )
            time.sleep(0.02)
        try:
            yield key
        finally:
            if not self._conn.closed:
                with suppress(TransientError, ConfigError):
                    self._run("SELECT pg_advisory_unlock(%s)", (key,))

    def save_token(self, name: str, ciphertext: str) -> None:
        self._run(
            "INSERT INTO {s}.tokens (name, ciphertext) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated_at = now()",
            (name, ciphertext),
        )
