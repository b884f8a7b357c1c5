"""The command line: parse flags, call the library, turn errors into messages and exit codes.

Thin on purpose: every command's work lives in a library module so it can be used and tested
without the CLI. Commands of other modules are registered at the bottom of this file.
"""

from __future__ import annotations

from typing import Any

import click

from spotify_audience_sync import __version__
from spotify_audience_sync.errors import SyncError


class Group(click.Group):
    """A click group that turns a SyncError into a one-line message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spotify-audience-sync")
def main() -> None:
    """Keep a Spotify Ads Manager customer-list audience equal to a segment of your data."""
