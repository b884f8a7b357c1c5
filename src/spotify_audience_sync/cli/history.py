"""`history` (the runs a state backend recorded) and `status` (the audiences' outcome, later).

Thin: the state backend (``sync.backend.open_state``) keeps the rows; these commands read them,
and `status` asks Spotify for each audience's processing status and records it against the
audience's last upload, so a `--no-wait` run or one that ended with exit 5 gets its outcome.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from spotify_audience_sync.cli.options import state_options, state_settings
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.backend import RunRecord

__all__ = ["history", "status"]


def _settings(ad_account_id: str | None, state_url: str | None, state_dir: str | None) -> Settings:
    from spotify_audience_sync.cli.options import load_cli_settings

    return load_cli_settings(ad_account_id=ad_account_id, **state_settings(state_url, state_dir))


def _size(low: int | None, high: int | None) -> str:
    return f"{low:,}-{high:,}" if low is not None and high is not None else "-"


def _run_line(run: RunRecord) -> str:
    audience = run.audience_name or run.audience_id or "?"
    return (
        f"{run.started_at}  {run.run_id}  {run.action or 'failed':<13} "
        f"{run.identifiers:>11,}  {run.status or '-':<10} {_size(run.size_min, run.size_max):>17}"
        f"  exit {run.exit_code:<3} {run.seconds:>8.1f}s  {audience}"
    )


_AUDIENCE = click.option("--audience", metavar="NAME|ID", help="Only this audience.")
_ACCOUNT = click.option(
    "--ad-account-id", metavar="UUID", help="Ad account [default: SPOTIFY_ADS_AD_ACCOUNT_ID]."
)
_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")


@click.command()
@_AUDIENCE
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_JSON
@_ACCOUNT
@state_options
def history(
    audience: str | None,
    limit: int,
    as_json: bool,
    ad_account_id: str | None,
    state_url: str | None,
    state_dir: str | None,
) -> None:
    """List recorded runs of `sync`, newest first: action, identifiers, status, size, exit code.

    Read from the state backend (the state dir or the state database); no credentials needed.
    """
    from spotify_audience_sync.sync.backend import open_state

    settings = _settings(ad_account_id, state_url, state_dir)
    with open_state(settings.state_location) as backend:
        runs = backend.history(settings.account_id, audience, limit)
    for run in runs:
        click.echo(json.dumps(run.to_dict(), sort_keys=True) if as_json else _run_line(run))
    if not runs and not as_json:
        click.echo("no runs recorded", err=True)


@click.command()
@_AUDIENCE
@_JSON
@_ACCOUNT
@state_options
def status(
    audience: str | None,
    as_json: bool,
    ad_account_id: str | None,
    state_url: str | None,
    state_dir: str | None,
) -> None:
    """Read the synced audiences' processing status from Spotify and record it.

    Each audience with a saved state (or only --audience) is read; its status and size range
    are recorded against its last upload in the history, so runs with --no-wait or exit 5
    get their outcome later.
    """
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.sync.backend import StatusUpdate, open_state
    from spotify_audience_sync.sync.tokens import token_sinks

    settings = _settings(ad_account_id, state_url, state_dir)
    account = settings.account_id
    with open_state(settings.state_location) as backend:
        known = backend.audiences(account)
        if audience is not None:
            chosen = [s.audience_id for s in known if audience in (s.audience_id, s.audience_name)]
            ids = chosen[:1] or [audience]
        else:
            ids = [s.audience_id for s in known]
        tokens = oauth_session(settings, sinks=token_sinks(backend, settings))
        try:
            with ads_client(settings, tokens) as client:
                for audience_id in ids:
                    found = client.get_audience(audience_id)
                    size = found.size
                    update = StatusUpdate(
                        ad_account_id=account,
                        audience_id=found.id,
                        status=None if found.status is None else str(found.status),
                        size_min=size.min if size else None,
                        size_max=size.max if size else None,
                        checked_at=utc_stamp(),
                    )
                    run_id = backend.record_status(update)
                    if as_json:
                        line = {"audience_name": found.name, "run_id": run_id, **vars(update)}
                        click.echo(json.dumps(line, sort_keys=True))
                    else:
                        click.echo(
                            f"{found.id}  {update.status or '?':<10} "
                            f"{_size(update.size_min, update.size_max):>17}  {found.name}"
                            f"  (recorded against run {run_id or '-'})"
                        )
        finally:
            tokens.close()
    if not ids and not as_json:
        click.echo("no synced audiences recorded", err=True)
