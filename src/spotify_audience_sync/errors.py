"""One error hierarchy for the whole connector.

::

    SyncError                     base; messages carry context, never PII or secrets
    ├─ ConfigError                bad setting or flag                       exit 78
    ├─ InputError                 unreadable input, bad column, encoding    exit 65
    │   └─ InputNotFoundError     the input file does not exist             exit 66
    ├─ AuthError                  login needed, invalid_grant, 401 twice    exit 77
    ├─ RemoteError                Spotify or GCS said no (4xx)              exit 69
    ├─ SafetyError                our own guards refused (too few, shrink)  exit 4
    └─ TransientError             429/5xx/timeouts after retries ran out    exit 75

Callers decide retry-or-fail from ``error.retryable`` alone; the CLI maps each type to its
exit code from ``error.exit_code`` alone. Foreign exceptions are translated where they are
raised (``raise ... from exc``), never re-wrapped twice.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_CODES",
    "AuthError",
    "ConfigError",
    "InputError",
    "InputNotFoundError",
    "RemoteError",
    "SafetyError",
    "SyncError",
    "TransientError",
]


class SyncError(Exception):
    """Base of every error the connector raises on purpose."""

    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False


class ConfigError(SyncError):
    """A setting or flag is missing or invalid; the message names it."""

    exit_code = 78


class InputError(SyncError):
    """The segment input cannot be read as asked; the message names the file and column."""

    exit_code = 65


class InputNotFoundError(InputError):
    """The input path does not exist (kept apart so schedulers can alert differently)."""

    exit_code = 66


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


class SafetyError(SyncError):
    """Our own guard refused to change an audience (too few rows, too big, a shrink).

    Not a RemoteError: nothing remote said no, and a scheduler must not page the API owner.
    """

    exit_code = 4


class TransientError(SyncError):
    """A failure that may pass (429, 5xx, timeouts) and outlived our retries."""

    exit_code = 75
    retryable = True


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug: please report it)",
    2: "usage error: unknown command, flag or argument",
    SafetyError.exit_code: "refused by a safety guard; nothing was changed",
    InputError.exit_code: "input data unreadable: encoding, missing or unusable column, empty",
    InputNotFoundError.exit_code: "input file not found",
    RemoteError.exit_code: "Spotify or Google refused the request",
    TransientError.exit_code: "temporary failure outlived the retries; run again later",
    AuthError.exit_code: "authentication needed or refused",
    ConfigError.exit_code: "invalid setting",
}
