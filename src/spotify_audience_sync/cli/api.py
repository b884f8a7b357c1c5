"""Commands that talk to Spotify (or the sandbox): ``auth``, ``audiences`` and ``sandbox``.

Thin: each command loads Settings, calls the library and prints. Errors are SyncErrors that
``cli.Group`` turns into one line and an exit code.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import sys
import tempfile
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from spotify_audience_sync.cli.options import uuid_argument
from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.settings import Settings, has_display, load_settings
from spotify_audience_sync.spotify.auth import DEFAULT_LOGIN_PORT, TokenStore
from spotify_audience_sync.spotify.client import AdsClient
from spotify_audience_sync.spotify.factory import ads_client, oauth_session
from spotify_audience_sync.spotify.login import login
from spotify_audience_sync.spotify.models import Audience
from spotify_audience_sync.timefmt import utc_stamp

__all__ = ["audiences", "auth", "sandbox"]


def _utc(seconds: float) -> str:
    return utc_stamp(seconds)


def _has_browser() -> bool:
    """Open a browser only where one can appear; a console browser would hang a headless run."""
    return has_display() or sys.platform in ("darwin", "win32")


@contextmanager
def _client(settings: Settings) -> Iterator[AdsClient]:
    """The API client; its token session's connections are closed with it."""
    tokens = oauth_session(settings)
    try:
        with ads_client(settings, tokens) as client:
            yield client
    finally:
        tokens.close()


# --- auth ----------------------------------------------------------------------------------
@click.group()
def auth() -> None:
    """Log in to Spotify, show the stored login, or forget it."""


@auth.command("login")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_LOGIN_PORT,
    show_default=True,
    help="Loopback port of the redirect URI registered for your Spotify app.",
)
@click.option("--browser/--no-browser", default=True, help="Open the login page in a browser.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait.")
def auth_login(port: int, browser: bool, timeout: float) -> None:
    """Authorize this tool with your Spotify account (PKCE; tokens stored 0600)."""
    settings = load_settings()
    settings.require("client_id", "client_secret")
    assert settings.client_id is not None
    assert settings.client_secret is not None
    tokens = login(
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        store=TokenStore(settings.token_store),
        port=port,
        open_url=webbrowser.open if browser and _has_browser() else None,
        echo=lambda text: click.echo(text, err=True),
        timeout=timeout,
    )
    click.echo(f"Logged in; access token valid until {_utc(tokens.expires_at)}.")
    click.echo(f"Tokens stored in {settings.token_store}")


@auth.command("status")
@click.option(
    "--check",
    "prove",
    is_flag=True,
    help="Prove the login works with one token refresh (exit 77 if it was revoked or expired).",
)
def auth_status(prove: bool) -> None:
    """Show whether a login is stored and when its access token expires (no secrets).

    Without --check nothing is sent: "valid" only means unexpired, since Spotify can revoke a
    token at any time. --check refreshes once, which proves the login and keeps the new tokens.
    """
    settings = load_settings()
    tokens = TokenStore(settings.token_store).load()
    click.echo(f"token store:    {settings.token_store}")
    click.echo(f"client id:      {settings.client_id or '(not set)'}")
    click.echo(f"ad account:     {settings.ad_account_id or '(not set)'}")
    if tokens is None:
        source = "SPOTIFY_ADS_REFRESH_TOKEN" if settings.refresh_token else None
        click.echo(f"login:          {'from ' + source if source else 'none: run `auth login`'}")
        return
    logged_in = _utc(tokens.logged_in_at) if tokens.logged_in_at else "unknown"
    click.echo(f"logged in at:   {logged_in}")
    if tokens.obtained_at and tokens.obtained_at != tokens.logged_in_at:
        click.echo(f"last refreshed: {_utc(tokens.obtained_at)}")
    if tokens.token_url:
        click.echo(f"issued by:      {tokens.token_url}")
    click.echo(f"refresh token:  {'present' if tokens.refresh_token else 'missing'}")
    left = tokens.expires_at - time.time()
    state = "unexpired" if left > 0 else "expired (refreshed on next use)"
    click.echo(f"access token:   {state} (until {_utc(tokens.expires_at)})")
    if not prove:
        click.echo("(not checked with Spotify: `auth status --check` proves it with one refresh)")
        return
    from spotify_audience_sync.spotify.factory import oauth_session

    session = oauth_session(settings)
    try:
        refreshed = session.force_refresh()  # AuthError (exit 77) when revoked or expired
    finally:
        session.close()
    where = " and ".join(refreshed.saved) or "nowhere"
    rotated = "; the refresh token rotated" if refreshed.rotated else ""
    click.echo(f"check:          OK, Spotify accepted the login{rotated}; tokens saved to {where}")


@auth.command("new-key")
def auth_new_key() -> None:
    """Print a new key for SPOTIFY_ADS_TOKEN_KEY (encrypts the token in a state database)."""
    from spotify_audience_sync.sync.tokens import new_key

    click.echo(new_key())


@auth.command("logout")
def auth_logout() -> None:
    """Delete the stored tokens (Spotify has no revocation endpoint)."""
    settings = load_settings()
    removed = TokenStore(settings.token_store).delete()
    click.echo(f"Removed {settings.token_store}." if removed else "No stored login to remove.")


# --- audiences -----------------------------------------------------------------------------
def _line(audience: Audience) -> str:
    size = audience.size
    shown = f"{size.min}-{size.max}" if size and size.max else "-"
    return f"{audience.id}  {audience.status or '?':<10}  {shown:>15}  {audience.name}"


def _json(audience: Audience) -> str:
    return json.dumps(audience.model_dump(mode="json"), sort_keys=True)


@click.group()
def audiences() -> None:
    """List, show or delete audiences of the ad account (SPOTIFY_ADS_AD_ACCOUNT_ID)."""


@audiences.command("list")
@click.option("-q", "--query", default=None, help="Case-insensitive name search.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audiences_list(query: str | None, as_json: bool) -> None:
    """List every audience (all pages)."""
    settings = load_settings()
    listed = 0
    with _client(settings) as client:
        for audience in client.list_audiences(q=query):
            click.echo(_json(audience) if as_json else _line(audience))
            listed += 1
    if not listed and not as_json:  # a person asked: silence would look like a hang or a bug
        matching = f" matching {query!r}" if query else ""
        click.echo(f"No audiences{matching} in ad account {settings.ad_account_id}.", err=True)


@audiences.command("get")
@click.argument("audience_id", callback=uuid_argument)
@click.option("--json", "as_json", is_flag=True, help="Print the audience as JSON.")
def audiences_get(audience_id: str, as_json: bool) -> None:
    """Show one audience: status and approximate size."""
    with _client(load_settings()) as client:
        audience = client.get_audience(audience_id)
    click.echo(_json(audience) if as_json else _line(audience))


@audiences.command("delete")
@click.argument("audience_id", callback=uuid_argument)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def audiences_delete(audience_id: str, yes: bool) -> None:
    """Delete an audience (Spotify refuses while it is LIVE)."""
    settings = load_settings()
    if not yes:
        click.confirm(f"Delete audience {audience_id}?", abort=True)
    with _client(settings) as client:
        count = client.delete_audience(audience_id)
    click.echo(f"Deleted {count} audience{'' if count == 1 else 's'}.")


# --- sandbox -------------------------------------------------------------------------------
@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True)
@click.option("--processing-delay", type=float, default=2.0, show_default=True)
@click.option("--token-ttl", type=int, default=3600, show_default=True, help="Access token life.")
@click.option("--rate-limit", type=int, default=1500, show_default=True, help="Requests per 30 s.")
@click.option("--error-codes-key", type=click.Choice(["error_codes", "errorCodes"]))
@click.option("--fail", "fails", multiple=True, help="ROUTE:STATUS[:COUNT] or ROUTE:drop[:COUNT].")
@click.option(
    "--rotate-refresh-tokens/--no-rotate-refresh-tokens",
    default=True,
    show_default=True,
    help="Answer every refresh with a new refresh token (the old one dies), as Spotify may.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Listen on a non-loopback --host; admin routes then need the key printed at start.",
)
def sandbox(
    host: str,
    port: int,
    processing_delay: float,
    token_ttl: int,
    rate_limit: int,
    error_codes_key: str | None,
    fails: tuple[str, ...],
    rotate_refresh_tokens: bool,
    allow_remote: bool,
) -> None:
    """Run the local Spotify emulator (Accounts, Ads API audiences, GCS uploads)."""
    from spotify_audience_sync.sandbox import ADMIN_KEY_HEADER, FaultRule, Sandbox, SandboxConfig
    from spotify_audience_sync.settings import is_loopback

    admin_key = None
    if not is_loopback(host):
        if not allow_remote:
            raise click.UsageError(
                f"--host {host} is not a loopback address: anyone who can reach it could mint "
                "tokens and read uploaded hashes; give --allow-remote to listen there anyway "
                "(admin routes then need a key)"
            )
        admin_key = secrets.token_urlsafe(24)

    try:
        rules = [FaultRule.parse(spec) for spec in fails]
    except ValueError as exc:
        raise ConfigError(f"--fail: {exc}") from None
    config = SandboxConfig(
        processing_delay=processing_delay,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        error_codes_key=error_codes_key or "error_codes",
        faults=rules,
        rotate_refresh_tokens=rotate_refresh_tokens,
    )
    try:
        emulator = Sandbox(host, port, config, admin_key=admin_key)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Its own token store and state dir: the printed settings never touch a real login's.
    home = Path(tempfile.mkdtemp(prefix="sas-sandbox-"))
    click.echo(f"sandbox listening on {emulator.base_url}", nl=True)
    for name, value in emulator.env(home).items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo(
        f"# paste the export lines into a shell to point spotify-audience-sync at the sandbox; "
        f"its tokens and state stay in {home}, removed when the sandbox stops",
        err=True,
    )
    if admin_key is not None:
        click.echo(
            f"# listening beyond loopback: /_sandbox/ admin routes need the header "
            f"{ADMIN_KEY_HEADER}: {admin_key}",
            err=True,
        )
    sys.stdout.flush()
    try:
        emulator.server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.server.server_close()
        shutil.rmtree(home, ignore_errors=True)
