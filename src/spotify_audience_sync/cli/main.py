"""The command line: parse flags, call the library, turn errors into messages and exit codes.

Thin on purpose: every command's work lives in a library module so it can be used and tested
without the CLI. Heavy libraries (polars, numpy, authlib) are imported by the command that
needs them, and command groups of other modules load on first use: `--help` and a scheduler's
short commands start in milliseconds, and the 1 s of imports is not charged to every run.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from spotify_audience_sync import __version__
from spotify_audience_sync.cli import early
from spotify_audience_sync.errors import (
    EXIT_DECLINED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    OutputError,
    SyncError,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output

# Commands defined in other modules, loaded when invoked or listed: name → "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "auth": "spotify_audience_sync.cli.api:auth",
    "audiences": "spotify_audience_sync.cli.api:audiences",
    "sandbox": "spotify_audience_sync.cli.api:sandbox",
    "prepare": "spotify_audience_sync.cli.prepare:prepare",
    "sync": "spotify_audience_sync.cli.sync:sync",
    "demo": "spotify_audience_sync.cli.sync:demo",
    "run": "spotify_audience_sync.cli.run:run",
    "spec": "spotify_audience_sync.cli.connector:spec",
    "check": "spotify_audience_sync.cli.connector:check",
    "history": "spotify_audience_sync.cli.history:history",
    "status": "spotify_audience_sync.cli.history:status",
    "completion": "spotify_audience_sync.cli.completion:completion",
}


class Group(click.Group):
    """A click group that turns a SyncError into a one-line message and its exit code.

    It also loads the commands in :data:`LAZY_COMMANDS` on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            _instrument(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncError as exc:
            self._fail(ctx, exc.to_dict())
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`| head -1`): end quietly
            _PENDING["pipe"] = {}
            _silence_stdout()
            ctx.exit(0 if ctx.invoked_subcommand not in JOB_COMMANDS else EXIT_OUTPUT)
        except Exception as exc:  # a bug: its message may quote data, so it is not printed
            if ctx.params.get("debug") or ctx.meta.get("debug"):
                raise
            message = (
                f"internal error ({type(exc).__name__}); details are withheld because they may "
                "contain data. Rerun with --debug for the traceback, and please report it."
            )
            self._fail(ctx, {"error": type(exc).__name__, "message": message, "exit_code": 1})

    @staticmethod
    def _fail(ctx: click.Context, error: dict[str, Any]) -> None:
        """``error`` is :meth:`SyncError.to_dict` (or its shape, for a bug)."""
        click.echo(f"error: {error['message']}", err=True)
        output: Output | None = ctx.obj  # set by make_output, when a command made one
        if output is not None:
            output.error(error)
        else:  # failed before its output existed (settings): the entry point prints it
            _PENDING["error"] = error
        ctx.exit(error["exit_code"])


def _debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["debug"] = True  # meta is shared by every context of the invocation


def _instrument(command: click.Command) -> None:
    """Accept --debug after any command too (``audiences list --debug``), and note that the
    command itself ran: `--help` ends before, and then no final JSON object is printed."""
    commands = command.commands.values() if isinstance(command, click.Group) else []
    for sub in commands:
        _instrument(sub)
    if not any("--debug" in param.opts for param in command.params):
        command.params.append(
            click.Option(
                ["--debug"], is_flag=True, hidden=True, expose_value=False, callback=_debug
            )
        )
    callback = command.callback
    if callback is not None and not getattr(callback, "_noted", False):

        def noted(*args: Any, **kwargs: Any) -> Any:
            _PENDING["ran"] = {}
            return callback(*args, **kwargs)

        noted._noted = True  # type: ignore[attr-defined]
        command.callback = functools.update_wrapper(noted, callback)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's last flush must not fail on the closed
    pipe again (Python's documented way, see the signal module's note on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file descriptor (a test runner's buffer)
        pass


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spotify-audience-sync")
@click.option(
    "--debug",
    is_flag=True,
    hidden=True,
    help="Show the traceback of an unexpected error (it may contain data: never in production).",
)
def main(debug: bool) -> None:
    """Keep a Spotify Ads Manager customer-list audience equal to a segment of your data."""
    from spotify_audience_sync.cli.output import begin_run

    begin_run()
    _PENDING.clear()


#: The commands a scheduler runs unattended: in json format, their last stdout line is always
#: one final object. The others print their own data (``spec``, ``audiences list --json``).
JOB_COMMANDS = frozenset({"prepare", "sync", "check", "demo", "run"})
_PENDING: dict[str, dict[str, Any]] = {}
_SIGINT = "interrupted (SIGINT); stopped cleanly: staged files removed, no upload left open"
_SIGTERM = "terminated (SIGTERM); stopped cleanly: staged files removed, no upload left open"
EXIT_OUTPUT = OutputError.exit_code


class Terminated(BaseException):
    """SIGTERM (what Kubernetes sends at a deadline), raised in the main thread.

    A BaseException, like KeyboardInterrupt, so that every ``with`` and ``finally`` on the way
    out runs (staged files removed, an open upload session cancelled) while ``except Exception``
    handlers do not swallow it.
    """


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _json_requested(args: Sequence[str]) -> bool:
    """Whether this run speaks JSON lines: as its output decided, when the command made one;
    else (click stopped before) its flag, else the setting, else auto (no terminal)."""
    from spotify_audience_sync.cli.output import active_output

    output = active_output()
    if output is not None:
        return output.format == "json"
    chosen = None
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--log-format="):
            chosen = arg.partition("=")[2]
    if chosen is None:
        from spotify_audience_sync.settings import log_format_setting

        chosen = log_format_setting()
    return chosen == "json" or (chosen == "auto" and not sys.stderr.isatty())


def _command(args: Sequence[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


def _stopped(code: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    click.echo(f"error: {message}", err=True)
    return code, {"error": kind, "message": message, "exit_code": code}


def run(args: Sequence[str] | None = None) -> NoReturn:
    """The ``spotify-audience-sync`` entry point: the click group, plus the machine contract.

    Whatever ends the run (a usage error, invalid settings, Ctrl-C, SIGTERM, a bug), the exit
    code is the documented one and, in json format, the last stdout line is one final object.
    """
    # First thing: a SIGTERM from now on ends the run cleanly (one that came while the
    # package was still being imported was noted by cli/__init__.py and is raised below).
    signal.signal(signal.SIGTERM, _terminate)
    argv = list(sys.argv[1:] if args is None else args)
    code, error = _invoke(argv)
    signal.signal(signal.SIGTERM, early.ORIGINAL)
    _finish(argv, code, error)


def _invoke(argv: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Run the click group; return the exit code and the error that ended it, if any."""
    error: dict[str, Any] | None = None
    try:
        from spotify_audience_sync.cli.output import begin_run

        begin_run()
        _PENDING.clear()
        early.raise_if_terminated(Terminated)
        code = main.main(args=argv, prog_name="spotify-audience-sync", standalone_mode=False)
        code = code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # usage errors: click prints them the usual way
        exc.show()
        code = exc.exit_code
        error = {"error": "UsageError", "message": exc.format_message(), "exit_code": code}
    except click.Abort as exc:  # click's word for Ctrl-C, and for a "no" at a prompt
        if isinstance(exc.__cause__, KeyboardInterrupt):
            code, error = _stopped(EXIT_SIGINT, "Interrupted", _SIGINT)
        else:
            code, error = _stopped(EXIT_DECLINED, "Declined", "declined; nothing was changed")
    except KeyboardInterrupt:
        code, error = _stopped(EXIT_SIGINT, "Interrupted", _SIGINT)
    except Terminated:
        if _command(argv) == "sandbox":  # a server stopped the usual way: not an error
            return 0, None
        code, error = _stopped(EXIT_SIGTERM, "Terminated", _SIGTERM)
    return code, error


def _finish(argv: list[str], code: int, error: dict[str, Any] | None) -> NoReturn:
    """In json format, the job commands' last stdout line is one final object; then exit."""
    from spotify_audience_sync.cli.output import final_line, final_sent

    error = error or _PENDING.get("error")
    command = _command(argv)
    # The job commands that ran or failed (not their --help), and errors before any command
    # ran (not --version, not `audiences`). `run --list` prints its own data, as `spec` does.
    listing = command == "run" and "--list" in argv
    started = "ran" in _PENDING or error is not None
    job = (command in JOB_COMMANDS and not listing and started) or (
        error is not None and command not in LAZY_COMMANDS
    )
    if "pipe" not in _PENDING and not final_sent() and _json_requested(argv) and job:
        if error is not None:
            final_line(sys.stdout, "error", **{**error, "exit_code": code})
        else:
            final_line(sys.stdout, "result", command=command, exit_code=code)
    sys.exit(code)
