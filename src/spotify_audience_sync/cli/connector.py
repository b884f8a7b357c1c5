"""Commands a CDP or scheduler runs around the sync: ``spec`` (the manifest) and ``check``.

``check`` proves a configuration works before the first sync: settings valid, the state dir
writable, a token obtained, the ad account's audiences readable. It changes nothing at Spotify
and prints nothing secret. Its failures
are the sync's: 78 setting, 77 authentication, 69 refused by Spotify, 75 try again later.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import click

from spotify_audience_sync.errors import ConfigError

__all__ = ["check", "spec"]

FIRST_PAGE = 50


def _probe_writable(directory: Path) -> None:
    """Create and delete a file in ``directory``: a sync must be able to save its state there."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ConfigError(
            f"state dir {directory} is not writable ({exc.strerror}); "
            "set --state-dir / SPOTIFY_ADS_STATE_DIR"
        ) from exc


@click.command()
def spec() -> None:
    """Print the connector manifest as JSON: settings schema, commands and exit codes.

    The same document as connector.yaml; it is generated from the code, so it always matches
    the installed version.
    """
    from spotify_audience_sync.cli.manifest import build_manifest, command_list

    root = click.get_current_context().find_root()
    commands = command_list(root.command, root)  # type: ignore[arg-type]
    click.echo(json.dumps(build_manifest(commands), indent=2, ensure_ascii=False))


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(["auto", "human", "json"]),
    help="json: the outcome as one JSON object on stdout [default: auto].",
)
def check(log_format: str | None) -> None:
    """Check settings, credentials and access to the ad account; change nothing.

    Validates the SPOTIFY_ADS_* settings and that the state dir can be written, obtains an
    access token and reads the first page of the ad account's audiences. Exits 0 with one
    line, or with the code a sync would give.
    """
    from spotify_audience_sync.cli.manifest import REQUIRED_SETTINGS
    from spotify_audience_sync.cli.options import make_output
    from spotify_audience_sync.settings import load_settings
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.sync.state import StateStore

    settings = load_settings(**({"log_format": log_format} if log_format else {}))
    out = make_output(settings.log_format, False, 0)
    settings.require(*REQUIRED_SETTINGS)
    _probe_writable(StateStore(settings.state_dir).path(settings.account_id, "check").parent)
    tokens = oauth_session(settings)
    try:
        tokens.access_token()
        with ads_client(settings, tokens) as client:
            seen = sum(1 for _ in itertools.islice(client.list_audiences(), FIRST_PAGE))
    finally:
        tokens.close()
    more = "+" if seen == FIRST_PAGE else ""
    if out.format == "json":
        out.event(
            "result",
            command="check",
            exit_code=0,
            ad_account_id=settings.account_id,
            audiences_seen=seen,
            more=bool(more),
        )
        return
    click.echo(
        f"OK: settings valid, state dir writable, token obtained, ad account "
        f"{settings.account_id} readable ({seen}{more} audiences seen)"
    )
