"""The stop of a plan's run (issue 25, item 4): what the worker threads see of a signal."""

from __future__ import annotations

import threading
import time

import pytest

from spotify_audience_sync.errors import StoppedByInterruptError, StoppedError
from spotify_audience_sync.sync.stop import Stop


class Terminated(BaseException):
    """Stands for the CLI's SIGTERM exception (cli/main.py)."""


def test_a_stop_ends_a_wait_at_once_with_the_signals_exit_code() -> None:
    stop = Stop()
    stop.sleep(0.01)  # not stopped: an ordinary wait
    threading.Timer(0.2, stop.set, args=(Terminated(),)).start()
    started = time.monotonic()
    with pytest.raises(StoppedError) as caught:
        stop.sleep(60)
    assert time.monotonic() - started < 10
    assert caught.value.exit_code == 143
    assert caught.value.retryable is True
    assert str(caught.value) == "terminated (SIGTERM) before this sync finished; safe to run again"
    assert isinstance(stop.cause, Terminated)


def test_ctrl_c_stops_with_130() -> None:
    stop = Stop()
    stop.check(12_345)  # as an on_progress callback, with the rows read so far
    stop.set(KeyboardInterrupt())
    with pytest.raises(StoppedByInterruptError, match=r"^interrupted \(SIGINT\)") as caught:
        stop.check(12_346)
    assert caught.value.exit_code == 130
