"""`sync` (the main job) and `demo` (the main job against a sandbox started for it).

Thin: flags in, :func:`sync.options.resolve_sync` types them over the settings, a
:class:`sync.job.Job` does the run, and its outcome becomes an exit code: 0 done
(BOOKABLE/LIVE, skipped, dry run, or uploaded with --no-wait), 3 EMPTY (Spotify matched
nobody), 5 still PROCESSING when --wait-timeout ran out (the upload itself succeeded).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spotify_audience_sync.cli.options import (
    cli_settings,
    flag_overrides,
    make_output,
    max_audiences_option,
    require_one_input,
    segment_options,
    service_options,
    state_options,
    uuid_argument,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import LogFormat, Output
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.mirror import SyncReport
    from spotify_audience_sync.sync.options import Overrides, SyncRun

DEMO_AUDIENCE = "spotify-audience-sync demo"
FIXTURE = Path("fixtures") / "segment.csv"


def run_sync(
    settings: Settings, run: SyncRun, *, report_path: str | None, out: Output
) -> tuple[int, SyncReport]:
    """One audience: the Job's run, then the summary, the report and the final JSON object."""
    from spotify_audience_sync.cli.output import run_id
    from spotify_audience_sync.cli.results import job_events, summary, sync_result, write_report
    from spotify_audience_sync.errors import SyncError
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.sync.job import Job
    from spotify_audience_sync.sync.mirror import validate_options

    validate_options(run.sync)  # before reading anything: a bad name fails in milliseconds
    # ... and before the first request: nothing after a write to Spotify may fail the run.
    for path, flag in ((report_path, "--report"), (run.prepare.rejects_path, "--rejects")):
        if path:
            check_writable(path, flag, inputs=run.inputs)
    job = Job(settings, events=job_events(out), phase=out.phase, run_id=run_id())
    try:
        outcome = job.sync(run)
    except SyncError as exc:
        if report_path and job.last is not None:  # a scheduler needs it most when it failed
            data = sync_result(job.last, job.run_id) | {"error": exc.to_dict()}
            write_report(report_path, data, out)
        raise
    result = sync_result(outcome, job.run_id)
    if report_path:
        write_report(report_path, result, out)
    out.outcome(summary(outcome.report))  # even with -q: the final result
    out.event("result", command="sync", exit_code=outcome.exit_code, **result)
    return outcome.exit_code, outcome.report


def run_groups(settings: Settings, run: SyncRun, *, report_path: str | None, out: Output) -> int:
    """One audience per value of the audience column: a line and an ``audience_result`` each,
    a final ``result`` listing them all; the worst exit code (:data:`errors.EXIT_SEVERITY`)."""
    from spotify_audience_sync.cli.output import run_id
    from spotify_audience_sync.cli.results import job_events, report_outcomes, write_report
    from spotify_audience_sync.errors import worst_exit_code
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.sync.job import Job

    if report_path:
        check_writable(report_path, "--report", inputs=run.inputs)
    job = Job(settings, events=job_events(out), phase=out.phase, run_id=run_id())
    outcomes = job.sync_groups(run)
    report_outcomes(out, outcomes)
    code = worst_exit_code(o.exit_code for o in outcomes)
    result: dict[str, Any] = {"audiences": [o.to_dict() for o in outcomes]}
    if report_path:
        write_report(report_path, result, out)
    out.event("result", command="sync", exit_code=code, **result)
    return code


def sync_run(
    input_path: str | None,
    query: str | None,
    fmt: Format,
    log_format: LogFormat | None,
    no_wait: bool,
    state_url: str | None,
    state_dir: str | None,
    **options: Any,
) -> tuple[Settings, SyncRun]:
    """The settings and the resolved run of `sync`'s flags (usage errors exit 2)."""
    from spotify_audience_sync.sync.options import resolve_sync

    require_one_input(input_path, query)
    given = flag_overrides(fmt, no_wait=no_wait, **options)
    _check_audience(given)
    settings = cli_settings(given, log_format, state_url, state_dir)
    run = resolve_sync(settings, given.validated_by(settings), input=input_path, query=query)
    return settings, run


def _check_audience(given: Overrides) -> None:
    """One way of naming the audience (usage errors, exit 2); a name with an id renames."""
    many = given.audience_column is not None
    if many and (given.audience_name or given.audience_id):
        raise click.UsageError(
            "--audience-column names each audience by --audience-name-template: "
            "drop --audience-name / --audience-id"
        )
    if many != bool(given.audience_name_template):
        raise click.UsageError("--audience-column and --audience-name-template go together")
    if not many and not (given.audience_name or given.audience_id):
        raise click.UsageError(
            "name the audience with --audience-name or --audience-id (both: the audience of "
            "that id, renamed to that name)"
        )


def _synthetic_segment(directory: Path) -> str:
    """A made-up segment (no one's data) for rehearsals where fixtures/ is not at hand."""
    from spotify_audience_sync.sandbox.segment import generate

    path = directory / "synthetic-segment.csv"
    generate(3000, seed=7, device_ids=True).write_csv(path)
    return str(path)


@click.command()
@segment_options
@click.option("--audience-name", metavar="NAME", help="Create or replace the audience so named.")
@click.option(
    "--audience-id", metavar="UUID", callback=uuid_argument, help="Replace this audience."
)
@click.option(
    "--ad-account-id", metavar="UUID", help="Ad account [default: SPOTIFY_ADS_AD_ACCOUNT_ID]."
)
@click.option("--description", metavar="TEXT", help="Description of a new audience (≤ 80).")
@click.option(
    "--dry-run", is_flag=True, help="Do everything up to the first write to Spotify, then stop."
)
@click.option("--no-wait", is_flag=True, help="Return once the file is uploaded.")
@click.option(
    "--wait-timeout",
    type=float,
    metavar="SECONDS",
    help="How long to wait for processing [default: 3600].",
)
@click.option(
    "--allow-shrink", is_flag=True, help="Allow fewer than half the last sync's identifiers."
)
@click.option("--force", is_flag=True, help="Upload even if the set is unchanged since last sync.")
@click.option(
    "--chunk-size",
    type=int,
    metavar="BYTES",
    help="Upload request size, a multiple of 262144 [default: 8388608].",
)
@click.option(
    "--lookalike",
    is_flag=True,
    default=None,
    help="Keep one LOOKALIKE audience seeded from the audience (created once, then kept).",
)
@service_options
@state_options
@click.option(
    "--audience-column",
    metavar="COL",
    help="Sync one audience per value of this column (one read); needs --audience-name-template.",
)
@click.option(
    "--audience-name-template",
    metavar="TEXT",
    help="Each group's audience name, {value} replaced by the column's value, e.g. 'CRM {value}'.",
)
@max_audiences_option
def sync(
    input_path: str | None,
    query: str | None,
    fmt: Format,
    report_path: str | None,
    log_format: LogFormat | None,
    quiet: bool,
    verbose: int,
    no_wait: bool,
    state_url: str | None,
    state_dir: str | None,
    **options: Any,
) -> None:
    """Make a Spotify customer-list audience hold exactly the segment in INPUT (Mirror mode).

    The audience is found by --audience-id, or by its exact --audience-name (created when
    there is none), and its whole membership is replaced by the segment's identifiers.
    INPUT is a file as for `prepare`, or give --query SQL and --database-url instead.
    """
    settings, run = sync_run(
        input_path, query, fmt, log_format, no_wait, state_url, state_dir, **options
    )
    out = make_output(settings.log_format, quiet, verbose)
    if run.groups is not None:
        code = run_groups(settings, run, report_path=report_path, out=out)
    else:
        code, _ = run_sync(settings, run, report_path=report_path, out=out)
    raise SystemExit(code)


@click.command()
@click.argument("input_path", metavar="[INPUT]", required=False)
@click.option("--processing-delay", type=float, default=1.0, show_default=True, hidden=True)
def demo(input_path: str | None, processing_delay: float) -> None:
    """Rehearse a sync end to end against a local sandbox started for it (no credentials).

    Syncs INPUT [default: fixtures/segment.csv, or a generated synthetic segment of 3,000 rows
    where there is no such file, as in the container] to a new audience, waits for it to
    become BOOKABLE, checks the sandbox received exactly the prepared rows, then syncs again
    to show that an unchanged segment is skipped.
    """
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.sandbox import run_sandbox
    from spotify_audience_sync.settings import load_settings
    from spotify_audience_sync.sync.options import Overrides, resolve_sync

    out = Output("human")  # a rehearsal is for a person: always the human view

    with (
        tempfile.TemporaryDirectory(prefix="sas-demo-") as home,
        run_sandbox(processing_delay=processing_delay) as sandbox,
    ):
        tokens = sandbox.mint_tokens()
        env = sandbox.env()
        settings = load_settings(
            _env_file=None,
            client_id=env["SPOTIFY_ADS_CLIENT_ID"],
            client_secret=env["SPOTIFY_ADS_CLIENT_SECRET"],
            refresh_token=str(tokens["refresh_token"]),
            ad_account_id=sandbox.ad_account_id,
            api_base_url=sandbox.api_base_url,
            token_url=sandbox.token_url,
            authorize_url=sandbox.authorize_url,
            token_store=Path(home) / "tokens.json",
            state_dir=Path(home) / "state",
            state_url=str(Path(home) / "state"),  # never the user's SPOTIFY_ADS_STATE_URL
            wait_timeout=60.0,
        )
        if input_path is None:
            input_path = str(FIXTURE) if FIXTURE.exists() else _synthetic_segment(Path(home))
        click.echo(f"sandbox listening on {sandbox.base_url}; syncing {input_path}", err=True)
        given = Overrides(audience_name=DEMO_AUDIENCE, description="demo segment")
        run = resolve_sync(settings, given, input=input_path)
        code, report = run_sync(settings, run, report_path=None, out=out)
        assert report.audience_id is not None
        members = sandbox.membership(report.audience_id)
        click.echo(
            f"the sandbox received {len(members):,} rows for the audience "
            f"(the prepared file had {report.identifiers:,} identifiers)",
            err=True,
        )
        click.echo("syncing the same segment again:", err=True)
        quiet = Output("human", verbosity=-1)
        again, _ = run_sync(settings, run, report_path=None, out=quiet)
        listed = sandbox.audiences.list(sandbox.ad_account_id, {})["audiences"]
        click.echo(f"audiences in the ad account: {len(listed)} (no duplicate)", err=True)
    raise SystemExit(code or again)
