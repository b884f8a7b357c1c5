"""Commands a CDP or scheduler runs around the sync: ``spec`` (the manifest) and ``check``.

``check`` proves a configuration works before the first sync: settings valid, the state
backend usable (the state dir writable, or the state database reachable and migrated), a token
obtained, the ad account's audiences readable. It writes nothing to Spotify and prints nothing
secret, but obtaining a token may rotate the refresh token: it says so, and where the new one
was kept, and fails (74) like a sync when it could not be kept. Its failures are the sync's:
78 setting, 77 authentication, 74 token not persisted, 69 refused by Spotify, 75 try again later.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from spotify_audience_sync.errors import ConfigError

if TYPE_CHECKING:
    from spotify_audience_sync.spotify.auth import Refresh

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

    Validates the SPOTIFY_ADS_* settings and the state backend (the state dir can be
    written, or the state database reached), obtains an access token and reads the first
    page of the ad account's audiences. Nothing is written to Spotify; if Spotify rotates the
    refresh token, check says where the new one was saved (exit 74 if nowhere). Exits 0, or
    with the code a sync would give.
    """
    from spotify_audience_sync.cli.manifest import REQUIRED_SETTINGS
    from spotify_audience_sync.cli.options import make_output
    from spotify_audience_sync.settings import load_settings
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.sync.backend import open_state
    from spotify_audience_sync.sync.state import StateStore
    from spotify_audience_sync.sync.tokens import token_sinks

    settings = load_settings(**({"log_format": log_format} if log_format else {}))
    out = make_output(settings.log_format, False, 0)
    settings.require(*REQUIRED_SETTINGS)
    with open_state(settings.state_location) as backend:
        if isinstance(backend, StateStore):
            _probe_writable(backend.path(settings.account_id, "check").parent)
            state = "state dir writable"
        else:
            state = f"state database {backend.describe()} ready"
        tokens = oauth_session(settings, sinks=token_sinks(backend, settings))
        try:
            tokens.access_token()
            with ads_client(settings, tokens) as client:
                account = client.get_ad_account()  # unknown: 78 naming it; no access: 77
                seen = sum(1 for _ in itertools.islice(client.list_audiences(), FIRST_PAGE))
        finally:
            tokens.close()
    more = "+" if seen == FIRST_PAGE else ""
    refreshed = tokens.refreshes[-1] if tokens.refreshes else None
    if out.format == "json":
        out.event(
            "result",
            command="check",
            exit_code=0,
            ad_account_id=settings.account_id,
            ad_account_name=account.name,
            audiences_seen=seen,
            more=bool(more),
            token={
                "refreshed": refreshed is not None,
                "rotated": bool(refreshed and refreshed.rotated),
                "saved_to": refreshed.saved if refreshed else [],
                "not_saved_to": refreshed.failed if refreshed else [],
            },
        )
        return
    click.echo(
        f"OK: settings valid, {state}, token obtained, ad account "
        f"{settings.account_id} ({account.name or 'unnamed'}) readable "
        f"({seen}{more} audience{'' if seen == 1 else 's'} seen)"
    )
    click.echo(_token_line(refreshed), err=True)  # stdout keeps its one result line


def _token_line(refreshed: Refresh | None) -> str:
    """What obtaining the token changed: said plainly, as check is meant to change nothing."""
    if refreshed is None:
        return "token: the stored access token is still valid; nothing was refreshed"
    where = " and ".join(refreshed.saved) or "nowhere"
    if refreshed.rotated:
        line = (
            f"token: refreshed; Spotify rotated the refresh token, the new one was saved to {where}"
        )
    else:
        line = f"token: refreshed (the refresh token did not change); saved to {where}"
    if refreshed.failed:
        line += f"; not saved to {'; '.join(refreshed.failed)}"
    return line
