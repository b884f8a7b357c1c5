"""How a run talks: progress bars for a person at a terminal, JSON lines for a machine.

``human``: progress bars on stderr (only on a terminal) and a summary at the end.
``json``: one JSON object per line (``ts``, ``level``, ``event`` and the event's counts and
timings) on stdout, or on stderr when stdout carries the data (``prepare -o -``), so a CDP or a
log shipper can parse every line. ``auto`` picks ``human`` on a terminal, ``json`` otherwise.

Events carry counts, ids, sizes and timings only: never an identifier, a token or a URL. Every
line carries the process's ``run_id`` and the tool's ``version``; in ``json`` the last line of
every run is one final object, ``result`` or ``error``, with ``exit_code`` (the entry point in
:mod:`.main` writes it when a run ended before a command could: usage errors, signals).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from spotify_audience_sync import __version__

__all__ = [
    "LogFormat",
    "Output",
    "activate",
    "active_output",
    "begin_run",
    "final_line",
    "final_sent",
    "run_id",
]

_LIBRARY_LOGGER = "spotify_audience_sync"

_FINAL = {"sent": False}
#: On every line a run prints: ``run_id`` joins a run's lines in a log store.
_STAMP = {"run_id": uuid.uuid4().hex, "version": __version__}


_ACTIVE: dict[str, Output] = {}


def activate(output: Output) -> None:
    """Make ``output`` the run's reporter: the entry point asks it for the run's format."""
    _ACTIVE["output"] = output


def active_output() -> Output | None:
    """The reporter a command made for this run, if it made one."""
    return _ACTIVE.get("output")


def begin_run() -> None:
    """A new run (one per process; tests invoke the CLI many times in one): new id, no final."""
    _STAMP["run_id"] = uuid.uuid4().hex
    _FINAL["sent"] = False
    _ACTIVE.clear()


def run_id() -> str:
    """This run's id."""
    return _STAMP["run_id"]


def final_sent() -> bool:
    """Whether this process has printed its final ``result`` or ``error`` JSON object."""
    return _FINAL["sent"]


def final_line(stream: TextIO, event: str, **fields: Any) -> None:
    """Print the final JSON object, once: for exits that happen where no Output exists."""
    if _FINAL["sent"]:
        return
    level = "info" if event == "result" else "error"
    _write(stream, {"ts": _now(), "level": level, "event": event, **_STAMP, **fields})
    _FINAL["sent"] = True


def _write(stream: TextIO, line: dict[str, Any]) -> None:
    stream.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
    stream.flush()


LogFormat = Literal["auto", "human", "json"]
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Output:
    """One run's reporter. ``verbosity``: -1 quiet, 0 normal, 1 verbose."""

    def __init__(
        self,
        fmt: LogFormat = "auto",
        verbosity: int = 0,
        *,
        stderr: TextIO | None = None,
        stdout: TextIO | None = None,
        stdout_is_data: bool = False,
    ) -> None:
        self.stderr = stderr or sys.stderr
        stdout = stdout or sys.stdout
        terminal = self.stderr.isatty()
        self.format: Literal["human", "json"] = (
            ("human" if terminal else "json") if fmt == "auto" else fmt
        )
        self.verbosity = verbosity
        self._json = self.stderr if stdout_is_data else stdout
        self._bars = self.format == "human" and terminal and verbosity >= 0
        self._progress: Any = None

    def capture_library_logs(self) -> None:
        """Show the library's structured log records (retries, waits, resumes) as events.

        They become JSON lines (level warning) in json format, ``warning retry ...`` lines in
        human format; nothing else of the library's logging reaches stderr as plain text.
        """
        logger = logging.getLogger(_LIBRARY_LOGGER)
        for handler in [h for h in logger.handlers if isinstance(h, _EventHandler)]:
            logger.removeHandler(handler)
        logger.addHandler(_EventHandler(self))
        logger.setLevel(logging.INFO)
        logger.propagate = False

    # --- machine lines -------------------------------------------------------------------------
    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Record something that happened; shown as a JSON line, or as a line when verbose."""
        threshold = {-1: "warning", 0: "info"}.get(self.verbosity, "debug")
        if _LEVELS[level] < _LEVELS[threshold] and name != "result":
            return
        if self.format == "json":
            if name in ("result", "error"):
                _FINAL["sent"] = True  # the entry point adds none of its own
            _write(self._json, {"ts": _now(), "level": level, "event": name, **_STAMP, **fields})
        elif name == "result":
            return  # a person reads the outcome line (``outcome``), not the report as a dict
        elif "message" in fields and _LEVELS[level] >= _LEVELS["warning"]:
            self._echo(f"{level}: {fields['message']}")  # a sentence, like warning()
        elif self.verbosity > 0 or _LEVELS[level] >= _LEVELS["warning"]:
            details = " ".join(f"{k}={_shown(v)}" for k, v in fields.items())
            self._echo(f"{level if level != 'info' else '·'} {name} {details}".rstrip())

    def warning(self, message: str, **fields: Any) -> None:
        """Something a person or a scheduler should look at, though the run goes on."""
        if self.format == "json":
            self.event("warning", "warning", message=message, **fields)
        else:
            self._echo(f"warning: {message}")

    def summary(self, text: str) -> None:
        """The human summary (human format only, not when quiet)."""
        if self.format == "human" and self.verbosity >= 0:
            self._echo(text)

    def outcome(self, text: str) -> None:
        """The run's final result for a person: printed in human format even when quiet."""
        if self.format == "human":
            self._echo(text)

    def error(self, error: dict[str, Any]) -> None:
        """A failure (``SyncError.to_dict()``): JSON line in json format; stderr has the message."""
        if self.format == "json":
            self.event("error", "error", **error)

    def _echo(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    # --- progress --------------------------------------------------------------------------------
    @contextmanager
    def phase(
        self, name: str, *, total: int | None = None, unit: str = "rows"
    ) -> Iterator[Callable[[int], None]]:
        """A phase of work; yields ``update(completed)``. Bars on a terminal, timings in JSON."""
        started = time.perf_counter()
        done = [0]
        if not self._bars:

            def record(completed: int) -> None:
                done[0] = completed

            yield record
        else:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description:<10}")]
            if unit == "bytes":
                columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn()]
            else:
                columns += [
                    TextColumn("{task.completed:>12,.0f} " + unit),
                    TextColumn("{task.fields[rate]:>14}"),
                ]
            columns.append(TimeElapsedColumn())
            with Progress(*columns, transient=False, console=_console(self.stderr)) as progress:
                self._progress = progress
                task = progress.add_task(name, total=total, rate="")

                def update(completed: int) -> None:
                    done[0] = completed
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    rate = f"{completed / elapsed:,.0f} {unit}/s"
                    progress.update(task, completed=completed, rate=rate)

                try:
                    yield update
                finally:
                    self._progress = None
        seconds = time.perf_counter() - started
        self.event("phase", "debug", phase=name, seconds=round(seconds, 3), **{unit: done[0]})


#: Loggers whose records repeat events the commands already receive through the Job's
#: callback (Mirror logs each event for library users who pass none): shown once, not twice.
_DELIVERED_BY_CALLBACK = frozenset({"spotify_audience_sync.sync.mirror"})


class _EventHandler(logging.Handler):
    """Log records made with ``spotify.events.event`` become the run's events."""

    def __init__(self, output: Output) -> None:
        super().__init__(logging.INFO)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in _DELIVERED_BY_CALLBACK:
            return
        name = getattr(record, "event", None)
        if name is not None:
            self.output.event(str(name), "warning", **getattr(record, "fields", {}))
        elif record.levelno >= logging.WARNING:  # messages are redacted where they are made
            self.output.event("warning", "warning", message=record.getMessage())


def _shown(value: Any) -> str:
    """A field's value for a person: nested values as compact JSON, never a Python repr."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _console(stream: TextIO) -> Any:
    from rich.console import Console

    return Console(file=stream, stderr=stream is sys.stderr)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
