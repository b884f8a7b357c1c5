"""`run PLAN`: the syncs of a plan file, all or some, N at once in one process.

Thin: :mod:`sync.plan` validates the plan and selects the syncs, :mod:`sync.runner` runs them;
this module prints one ``sync_result`` line per sync (and an ``audience_result`` per audience)
and a final ``result`` listing them all, and exits with the worst code
(:data:`errors.EXIT_SEVERITY`). ``--list --json`` prints the selected names for orchestrators
(Airflow's dynamic task mapping, a Kubernetes Indexed Job's completions).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from spotify_audience_sync.cli.options import (
    load_cli_settings,
    make_output,
    state_options,
    state_settings,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend
    from spotify_audience_sync.sync.plan import PlanSync
    from spotify_audience_sync.sync.runner import SyncOutcome


@click.command("run")
@click.argument("plan_path", metavar="PLAN")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this sync (repeatable).")
@click.option(
    "--index",
    type=click.IntRange(min=0),
    metavar="N",
    help="Run only the plan's N-th sync, from 0 (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    metavar="N",
    help="Run N reads at once, sharing one OAuth session and one rate limiter.",
)
@click.option(
    "--dry-run", is_flag=True, help="Do everything up to the first write to Spotify, then stop."
)
@click.option(
    "--list", "list_only", is_flag=True, help="Print the selected syncs' names; run none."
)
@click.option("--json", "as_json", is_flag=True, help="With --list: a JSON array on stdout.")
@state_options
@click.option(
    "--log-format",
    type=click.Choice(["auto", "human", "json"]),
    help="As for `sync` [default: auto].",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and the final result.")
@click.option("-v", "--verbose", count=True, help="Also report each step as it happens.")
def run(
    plan_path: str,
    only: tuple[str, ...],
    index: int | None,
    parallel: int,
    dry_run: bool,
    list_only: bool,
    as_json: bool,
    state_dir: str | None,
    state_url: str | None,
    log_format: str | None,
    quiet: bool,
    verbose: int,
) -> None:
    """Run the syncs of a plan file (YAML): each a source, a column mapping and an audience.

    Syncs that read the same query (or file) share one read. The exit code is the worst of
    the syncs' outcomes, in the order docs/scheduling.md gives. The plan's JSON Schema is in
    `spec`.
    """
    from spotify_audience_sync.errors import worst_exit_code
    from spotify_audience_sync.sync.plan import load_plan, select_syncs

    plan = load_plan(plan_path)
    syncs = select_syncs(plan, list(only), index)
    if list_only:
        names = [sync.name for sync in syncs]
        click.echo(json.dumps(names) if as_json else "\n".join(names))
        return
    state = state_settings({"state_dir": state_dir, "state_url": state_url})
    settings = load_cli_settings(log_format=log_format, **state)
    out = make_output(settings.log_format, quiet, verbose)
    outcomes = _run(plan_path, syncs, settings, parallel, dry_run, out)
    from spotify_audience_sync.cli.many import report_outcomes

    for outcome in outcomes:
        report_outcomes(out, outcome.audiences, sync_name=outcome.name)
        if outcome.error is not None:
            message = outcome.error.get("message")
            out.outcome(f"sync {outcome.name}: failed (exit {outcome.error_code}): {message}")
        fields = outcome.to_dict()
        fields["sync_name"] = fields.pop("name")  # `name` is the event's own
        out.event("sync_result", **fields)
    code = worst_exit_code(o.exit_code for o in outcomes)
    out.outcome(
        f"{len(outcomes)} syncs, "
        f"{sum(len(o.audiences) for o in outcomes)} audiences; exit code {code}"
    )
    out.event("result", command="run", exit_code=code, syncs=[o.to_dict() for o in outcomes])
    raise SystemExit(code)


def _run(
    plan_path: str,
    syncs: list[PlanSync],
    settings: Settings,
    parallel: int,
    dry_run: bool,
    out: Output,
) -> list[SyncOutcome]:
    from spotify_audience_sync.settings import named_variables
    from spotify_audience_sync.sync.backend import open_state

    environ = named_variables(s.database_url_env for s in syncs if s.database_url_env)
    with open_state(settings.state_location) as backend:
        return _run_with_state(plan_path, syncs, settings, parallel, dry_run, out, environ, backend)


def _run_with_state(
    plan_path: str,
    syncs: list[PlanSync],
    settings: Settings,
    parallel: int,
    dry_run: bool,
    out: Output,
    environ: dict[str, str],
    backend: StateBackend,
) -> list[SyncOutcome]:
    """The plan's syncs with one state backend, one OAuth session and one rate limiter."""
    from spotify_audience_sync.cli.many import group_events
    from spotify_audience_sync.cli.sync import _now, _record
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.spotify.ratelimit import RateLimiter
    from spotify_audience_sync.sync.runner import run_plan
    from spotify_audience_sync.sync.tokens import token_sinks

    tokens = oauth_session(settings, sinks=token_sinks(backend, settings))
    limiter = RateLimiter()  # Spotify's limits are per app: one limiter for every sync
    clients: dict[str, AdsClient] = {}
    lock = threading.Lock()

    def client_for(account: str) -> AdsClient:
        with lock:
            if account not in clients:
                overridden = settings.model_copy(update={"ad_account_id": account})
                clients[account] = ads_client(overridden, tokens, limiter=limiter)
            return clients[account]

    started, clock = _now(), time.monotonic()
    try:
        outcomes = run_plan(
            syncs,
            settings,
            client_for,
            folder=Path(plan_path).resolve().parent,
            environ=environ,
            store=backend,
            parallel=parallel,
            dry_run=dry_run,
            events=lambda name, key: group_events(out, key, sync_name=name),
        )
    finally:
        for client in clients.values():
            client.close()
        tokens.close()
    seconds = time.monotonic() - clock
    audiences = [o for outcome in outcomes for o in outcome.audiences]
    for part, o in enumerate(audiences, 1):  # one history row each, as its own sync would leave
        message = str(o.error.get("message")) if o.error else None
        _record(backend, o.report, o.prepared, started, seconds, o.exit_code, message, out, part)
    return outcomes
