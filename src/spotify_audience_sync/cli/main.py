"""The command line: parse flags, call the library, turn errors into messages and exit codes.

Thin on purpose: every command's work lives in a library module so it can be used and tested
without the CLI. Heavy libraries (polars, numpy, authlib) are imported by the command that
needs them, and command groups of other modules load on first use: `--help` and a scheduler's
short commands start in milliseconds, and the 1 s of imports is not charged to every run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import click

from spotify_audience_sync import __version__
from spotify_audience_sync.errors import SyncError

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
    "spec": "spotify_audience_sync.cli.connector:spec",
    "check": "spotify_audience_sync.cli.connector:check",
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
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncError as exc:
            self._fail(ctx, exc.to_dict())
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: its message may quote data, so it is not printed
            if ctx.params.get("debug"):
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
        ctx.exit(error["exit_code"])


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
