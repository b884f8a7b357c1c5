"""`completion`: print the shell's tab-completion script, so it can be documented and sourced.

Click already answers completion requests (``_SPOTIFY_AUDIENCE_SYNC_COMPLETE=bash_source``);
this command prints the same script under a name a person can find in ``--help``.
"""

from __future__ import annotations

import click

__all__ = ["completion"]

COMPLETE_VAR = "_SPOTIFY_AUDIENCE_SYNC_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the tab-completion script for SHELL (bash, zsh or fish).

    Load it once per session with `eval "$(spotify-audience-sync completion bash)"` (zsh
    likewise), or for fish `spotify-audience-sync completion fish | source`; put that line in
    your shell's startup file to keep it.
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root()
    complete = get_completion_class(shell)
    assert complete is not None  # every choice is a shell click knows
    script = complete(root.command, {}, "spotify-audience-sync", COMPLETE_VAR).source()
    click.echo(script)
