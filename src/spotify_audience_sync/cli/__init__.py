"""The command line: thin commands over the library, errors mapped to exit codes, output."""

from spotify_audience_sync.cli.main import main

__all__ = ["main"]
