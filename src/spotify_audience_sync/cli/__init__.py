"""The command line: thin commands over the library, errors mapped to exit codes, output.

``run`` is the console entry point (the click group ``main`` plus the machine contract: exit
codes for signals and usage errors, the final JSON object); ``main`` is the click group itself.
"""

from spotify_audience_sync.cli import early

early.install()  # before the imports below: see cli/early.py

from spotify_audience_sync.cli.main import main, run  # noqa: E402

__all__ = ["main", "run"]
