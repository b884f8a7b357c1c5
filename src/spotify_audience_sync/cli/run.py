"""`run PLAN`: the syncs of a plan file, all or some, N at once in one process.

Thin: :mod:`sync.plan` validates the plan and selects the syncs, a :class:`sync.job.Job` runs
them; this module prints one ``sync_result`` line per sync (and an ``audience_result`` per
audience) and a final ``result`` listing them all, and exits with the worst code
(:data:`errors.EXIT_SEVERITY`). ``--list --json`` prints the selected names for orchestrators
(Airflow's dynamic task mapping, a Kubernetes Indexed Job's completions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spotify_audience_sync.cli.options import (
    cli_settings,
    make_output,
    service_options,
    state_options,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import LogFormat


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
@service_options
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
    log_format: LogFormat | None,
    quiet: bool,
    verbose: int,
    **service: Any,
) -> None:
    """Run the syncs of a plan file (YAML): each a source, a column mapping and an audience.

    Syncs that read the same query (or file) share one read. The exit code is the worst of
    the syncs' outcomes, in the order docs/scheduling.md gives. The plan's JSON Schema is in
    `spec`.
    """
    from spotify_audience_sync.cli.main import Terminated
    from spotify_audience_sync.cli.output import run_id
    from spotify_audience_sync.cli.results import job_events, report_outcomes
    from spotify_audience_sync.errors import EXIT_SIGINT, EXIT_SIGTERM, worst_exit_code
    from spotify_audience_sync.sync.job import Job
    from spotify_audience_sync.sync.plan import load_plan, select_syncs

    plan = load_plan(plan_path)
    syncs = select_syncs(plan, list(only), index)
    if list_only:
        names = [sync.name for sync in syncs]
        click.echo(json.dumps(names) if as_json else "\n".join(names))
        return
    from spotify_audience_sync.sync.options import Overrides

    settings = cli_settings(Overrides(**service), log_format, state_url, state_dir)
    out = make_output(settings.log_format, quiet, verbose)
    job = Job(settings, events=job_events(out), run_id=run_id())
    folder = Path(plan_path).resolve().parent
    stopped: int | None = None
    try:
        outcomes = job.run_plan(
            syncs,
            folder=folder,
            parallel=parallel,
            dry_run=dry_run,
            plan_id=str(Path(plan_path).resolve()),
            complete=not only and index is None,
        )
    except (Terminated, KeyboardInterrupt) as exc:  # raised after the outcomes were recorded
        if job.plan is None:  # before any sync ran: as for any command (cli/main.py)
            raise
        outcomes = job.plan
        stopped = EXIT_SIGINT if isinstance(exc, KeyboardInterrupt) else EXIT_SIGTERM
    for outcome in outcomes:
        report_outcomes(out, outcome.audiences, sync_name=outcome.name)
        if outcome.error is not None:
            message = outcome.error.get("message")
            out.outcome(f"sync {outcome.name}: failed (exit {outcome.error_code}): {message}")
        fields = outcome.to_dict()
        fields["sync_name"] = fields.pop("name")  # `name` is the event's own
        out.event("sync_result", **fields)
    code = stopped or worst_exit_code(o.exit_code for o in outcomes)
    out.outcome(
        f"{len(outcomes)} syncs, "
        f"{sum(len(o.audiences) for o in outcomes)} audiences; exit code {code}"
    )
    out.event("result", command="run", exit_code=code, syncs=[o.to_dict() for o in outcomes])
    raise SystemExit(code)
