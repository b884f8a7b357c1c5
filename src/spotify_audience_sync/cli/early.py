"""The first lines the CLI runs: a SIGTERM during start-up is noted, not lost.

Importing the CLI (click, our modules) takes a few hundred milliseconds on a busy machine; a
scheduler that stops a job in that window (a deadline, a cancelled deploy) must still see exit
143 and, in json format, a final object. So the package notes the signal here, before any
other import, and :func:`cli.main.run` raises it once its own handler is in place. Only in the
CLI's own process: importing the package as a library changes no signal handler.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["ORIGINAL", "install", "raise_if_terminated"]

#: The SIGTERM handler before the CLI touched it; restored when the run ends.
ORIGINAL: Any = signal.getsignal(signal.SIGTERM)
_NOTED: list[int] = []


def _note(signum: int, _frame: object) -> None:
    _NOTED.append(signum)


def _is_cli_process() -> bool:
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return program.name == "spotify-audience-sync" or program.parts[-2:] == (
        "spotify_audience_sync",
        "__main__.py",
    )


def install() -> None:
    """Note a SIGTERM from now until :func:`cli.main.run` installs its handler."""
    if _is_cli_process():
        with contextlib.suppress(ValueError):  # not the main thread: nothing to note there
            signal.signal(signal.SIGTERM, _note)


def raise_if_terminated(kind: type[BaseException]) -> None:
    """Raise ``kind`` if a SIGTERM came during start-up."""
    if _NOTED:
        _NOTED.clear()
        raise kind(signal.SIGTERM)
