"""The stop of a plan's run: what a signal to the main thread tells the worker threads.

SIGTERM (Kubernetes at a deadline) and Ctrl-C reach only the main thread, but the syncs of
`run PLAN` run on worker threads (:mod:`sync.runner`). The main thread sets the run's
:class:`Stop`; each worker sees it at its next checkpoint: a batch read, a request of the
upload, a wait (between polls, before a retry). There it raises :class:`errors.StoppedError`,
which ends the sync as any failure does: the upload cancels its GCS session, the audience's
outcome and history row say 143. A wait is an ``Event.wait``, so a stop ends it at once.
"""

from __future__ import annotations

import threading

from spotify_audience_sync.errors import StoppedByInterruptError, StoppedError

__all__ = ["Stop"]


class Stop:
    """Set once by the main thread; checked by the workers, which raise StoppedError."""

    def __init__(self) -> None:
        self._event = threading.Event()
        #: What stopped the run (the main thread's exception), for the caller to raise again.
        self.cause: BaseException | None = None

    def set(self, cause: BaseException) -> None:
        self.cause = cause
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def error(self) -> StoppedError:
        """The error of a sync the stop ended (or that it kept from starting)."""
        if isinstance(self.cause, KeyboardInterrupt):
            return StoppedByInterruptError(
                "interrupted (SIGINT) before this sync finished; safe to run again"
            )
        return StoppedError("terminated (SIGTERM) before this sync finished; safe to run again")

    def check(self, *_progress: object) -> None:
        """Raise StoppedError once stopped (usable as an ``on_progress`` callback)."""
        if self._event.is_set():
            raise self.error()

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a stop ends at once, with StoppedError."""
        self._event.wait(seconds)
        self.check()
