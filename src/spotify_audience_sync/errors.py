"""One error hierarchy for the whole connector.

::

    SyncError                     base; messages carry context, never PII or secrets
    ├─ ConfigError                bad setting or flag                       exit 78
    │   ├─ TokenNotPersistedError a rotated refresh token could not be kept   exit 74
    │   └─ UsageError             a flag's value is bad; named as typed     exit 2
    ├─ InputError                 unreadable input, bad column, encoding    exit 65
    │   └─ InputNotFoundError     the input file does not exist             exit 66
    ├─ OutputError                an output file cannot be written          exit 73
    ├─ AuthError                  login needed, invalid_grant, 401 twice    exit 77
    ├─ RemoteError                Spotify or GCS said no (4xx)              exit 69
    │   └─ UploadSessionLostError the GCS session expired mid-upload        exit 69
    ├─ SafetyError                our own guards refused (too few, shrink)  exit 4
    └─ TransientError             429/5xx/timeouts after retries ran out    exit 75
        ├─ OutcomeUnknownError    a write got 5xx or no answer: did it land? exit 75
        └─ StoppedError           SIGTERM stopped a sync of a plan mid-way   exit 143
            └─ StoppedByInterruptError  the same, by SIGINT (Ctrl-C)       exit 130

Callers decide retry-or-fail from ``error.retryable`` alone; the CLI maps each type to its
exit code from ``error.exit_code`` alone, and every error describes itself for the JSON final
object with ``to_dict()``. Foreign exceptions are translated where they are raised
(``raise ... from exc``), never re-wrapped twice. :data:`EXIT_CODES` is the one table of every
exit code the CLI can return, errors and sync outcomes alike: the manifest, the docs and the
tests read it from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "EXIT_CODES",
    "EXIT_DECLINED",
    "EXIT_EMPTY",
    "EXIT_SEVERITY",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_STILL_PROCESSING",
    "AuthError",
    "ConfigError",
    "InputError",
    "InputNotFoundError",
    "OutcomeUnknownError",
    "OutputError",
    "RemoteError",
    "SafetyError",
    "StoppedByInterruptError",
    "StoppedError",
    "SyncError",
    "TokenNotPersistedError",
    "TransientError",
    "UploadSessionLostError",
    "UsageError",
    "worst_exit_code",
]


class SyncError(Exception):
    """Base of every error the connector raises on purpose."""

    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False
    #: What the run had done when it failed (a ``SyncReport`` from a mirror sync), else None.
    #: Typed loosely so this module imports nothing of ours.
    report: Any = None

    def attrs(self) -> dict[str, Any]:
        """Structured details beyond the message (subclasses add theirs); never data or secrets."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON final object and the report carry it, built in one place."""
        return {
            "error": type(self).__name__,
            "message": str(self),
            "exit_code": self.exit_code,
            "retryable": self.retryable,
            **{key: value for key, value in self.attrs().items() if value not in (None, ())},
        }


class ConfigError(SyncError):
    """A setting or flag is missing or invalid; the message names it."""

    exit_code = 78


class TokenNotPersistedError(ConfigError):
    """Spotify rotated the refresh token and the new one could not be stored anywhere durable.

    The old refresh token is already dead, so a run that went on would succeed once and leave
    the next run unable to log in (exit 77). Raised before the first write to Spotify; the
    message says how to persist it (a writable token store, or the state database with
    SPOTIFY_ADS_TOKEN_KEY).
    """

    exit_code = 74


class UsageError(ConfigError):
    """A value given on the command line is invalid; the message names the flag as typed."""

    exit_code = 2


class InputError(SyncError):
    """The segment input cannot be read as asked; the message names the file and column."""

    exit_code = 65


class InputNotFoundError(InputError):
    """The input path does not exist (kept apart so schedulers can alert differently)."""

    exit_code = 66


class OutputError(SyncError):
    """An output (``--output``, ``--report``, ``--rejects``) cannot be written: the path is a
    directory, its folder is missing or read-only, or the disk is full. The message names the
    flag and the path; nothing is left half-written."""

    exit_code = 73


class AuthError(SyncError):
    """Credentials are missing, expired for good, or refused: the user must act."""

    exit_code = 77


class RemoteError(SyncError):
    """Spotify or GCS refused a request for a reason retrying will not fix."""

    exit_code = 69

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        trace_id: str | None = None,
        codes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.trace_id = trace_id
        self.codes = codes

    def attrs(self) -> dict[str, Any]:
        return {"status": self.status, "trace_id": self.trace_id, "codes": list(self.codes) or ()}


class UploadSessionLostError(RemoteError):
    """The GCS upload session expired or vanished mid-upload (404 or 410 on its URI).

    Nothing was completed from it, so a new upload URL can start the upload over; Mirror sync
    does that once before it gives up.
    """


class SafetyError(SyncError):
    """Our own guard refused to change an audience (too few rows, too big, a shrink).

    Not a RemoteError: nothing remote said no, and a scheduler must not page the API owner.
    """

    exit_code = 4


class TransientError(SyncError):
    """A failure that may pass (429, 5xx, timeouts) and outlived our retries."""

    exit_code = 75
    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def attrs(self) -> dict[str, Any]:
        return {"status": self.status}


class OutcomeUnknownError(TransientError):
    """A write (POST/PATCH/DELETE) was answered 5xx or not at all: it may or may not have landed.

    Never resent blindly: the caller reconciles by reading (a rerun of a Mirror sync finds an
    audience created by the lost POST by its name). Retryable as a whole run, not as a request.
    """

    def __init__(self, message: str, *, status: int | None = None, method: str = "") -> None:
        super().__init__(message, status=status)
        self.method = method

    def attrs(self) -> dict[str, Any]:
        return {"status": self.status, "method": self.method or None, "outcome": "unknown"}


#: A sync that uploaded but Spotify matched none of it (the audience is EMPTY).
EXIT_EMPTY = 3
#: A sync that uploaded, but Spotify was still processing when --wait-timeout ran out.
EXIT_STILL_PROCESSING = 5
#: A confirmation prompt was answered no.
EXIT_DECLINED = 10
#: Stopped by SIGINT (Ctrl-C) or SIGTERM (a deadline, a scheduler): 128 + the signal's number.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class StoppedError(TransientError):
    """SIGTERM (a deadline) stopped the run while this sync was under way, on a thread the
    signal does not reach: its upload session was cancelled (nothing completed from it), or
    its wait for processing ended. Retryable: a rerun finds what was done and goes on."""

    exit_code = EXIT_SIGTERM


class StoppedByInterruptError(StoppedError):
    """The same as :class:`StoppedError`, by SIGINT (Ctrl-C)."""

    exit_code = EXIT_SIGINT


@dataclass(frozen=True)
class ExitCode:
    """One row of the exit-code table."""

    code: int
    meaning: str
    retryable: bool = False


EXIT_TABLE: tuple[ExitCode, ...] = (
    ExitCode(0, "success"),
    ExitCode(1, "unexpected internal error (a bug: please report it)"),
    ExitCode(
        UsageError.exit_code, "usage error: unknown command, flag or argument, or bad flag value"
    ),
    ExitCode(
        EXIT_EMPTY, "synced, but Spotify matched none of the identifiers (the audience is EMPTY)"
    ),
    ExitCode(SafetyError.exit_code, "refused by a safety guard; nothing was changed"),
    ExitCode(
        EXIT_STILL_PROCESSING,
        "uploaded, but still PROCESSING when the wait timeout ran out "
        "(Spotify can take up to three days)",
    ),
    ExitCode(EXIT_DECLINED, "declined at a confirmation prompt; nothing was changed"),
    ExitCode(
        InputError.exit_code, "input data unreadable: encoding, missing or unusable column, empty"
    ),
    ExitCode(InputNotFoundError.exit_code, "input file not found"),
    ExitCode(
        OutputError.exit_code,
        "an output file cannot be written (a directory, no such folder, no permission, disk full)",
    ),
    ExitCode(RemoteError.exit_code, "Spotify or Google refused the request"),
    ExitCode(
        TokenNotPersistedError.exit_code,
        "the refresh token rotated and could not be persisted (no writable token store, no "
        "state database with a token key); stopped before any write to Spotify",
    ),
    ExitCode(
        TransientError.exit_code,
        "temporary failure outlived the retries; run again later",
        retryable=True,
    ),
    ExitCode(AuthError.exit_code, "authentication needed or refused"),
    ExitCode(ConfigError.exit_code, "invalid setting"),
    ExitCode(
        EXIT_SIGINT,
        "interrupted (SIGINT): stopped reading, cancelled the upload, removed staged files",
        retryable=True,
    ),
    ExitCode(
        EXIT_SIGTERM,
        "terminated (SIGTERM, e.g. a deadline): stopped reading, cancelled the upload, removed "
        "staged files",
        retryable=True,
    ),
)

#: Every exit code the CLI returns, with its meaning: the one table the manifest and docs read.
EXIT_CODES: dict[int, str] = {row.code: row.meaning for row in EXIT_TABLE}

#: When one run syncs many audiences, its exit code is the worst of theirs, in this order
#: (worst first): a failure that needs a person (a bug, then settings, auth, input, output,
#: Spotify's refusal, our guards), then one a retry may fix, then an outcome to look at (still
#: PROCESSING, EMPTY), then success. A person's problem outranks a retryable one: retrying would
#: not fix it, and the groups that did fail transiently are retried by the next scheduled run.
EXIT_SEVERITY: tuple[int, ...] = (
    1,
    2,
    ConfigError.exit_code,
    AuthError.exit_code,
    TokenNotPersistedError.exit_code,
    InputNotFoundError.exit_code,
    InputError.exit_code,
    OutputError.exit_code,
    RemoteError.exit_code,
    SafetyError.exit_code,
    EXIT_DECLINED,
    EXIT_SIGTERM,
    EXIT_SIGINT,
    TransientError.exit_code,
    EXIT_STILL_PROCESSING,
    EXIT_EMPTY,
    0,
)


def worst_exit_code(codes: Iterable[int]) -> int:
    """The worst of several audiences' exit codes by :data:`EXIT_SEVERITY` (0 for none)."""
    return min(codes, key=EXIT_SEVERITY.index, default=0)
