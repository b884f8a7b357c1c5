"""`sync` (the main job) and `demo` (the main job against a sandbox started for it).

Thin: flags and settings in, :func:`mirror.mirror` does the work, the outcome becomes an exit
code: 0 done (BOOKABLE/LIVE, skipped, dry run, or uploaded with --no-wait), 3 EMPTY (Spotify
matched nobody), 5 still PROCESSING when --wait-timeout ran out (the upload itself succeeded).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spotify_audience_sync.cli.options import (
    SETTING_FLAGS,
    announce_columns,
    load_cli_settings,
    make_output,
    max_audiences_option,
    prepare_options,
    require_one_input,
    segment_options,
    state_options,
    state_settings,
    uuid_argument,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.backend import StateBackend
    from spotify_audience_sync.sync.mirror import SyncOptions, SyncReport, Uploader

DEMO_AUDIENCE = "spotify-audience-sync demo"
FIXTURE = Path("fixtures") / "segment.csv"


def _summary(report: SyncReport) -> str:
    from spotify_audience_sync.segment.report import plural

    audience = f"{report.audience_name!r} ({report.audience_id or 'new'})"
    line = f"audience {audience}: {report.action}"
    if report.action in ("created", "replaced"):
        line += (
            f"; {plural(report.identifiers, 'identifier')}, {plural(report.bytes, 'byte')} in "
            f"{plural(report.upload_requests, 'request')} "
            f"({plural(report.upload_resumes, 'resume')})"
        )
    if report.status:
        line += f"; status {report.status}"
    if report.size_min is not None and report.size_max is not None:
        line += f", size {report.size_min:,} to {report.size_max:,}"
    person, identifier = report.match_rate_per_person, report.match_rate
    if person is not None and identifier is not None:
        line += (
            f"; estimated match rate {person[0]:.0%} to {person[1]:.0%} per person (of "
            f"{plural(report.rows_with_identifier, 'input row')} with an accepted identifier), "
            f"{identifier[0]:.0%} to {identifier[1]:.0%} per identifier (of "
            f"{report.identifiers:,} uploaded)"
        )
    if report.status == "EMPTY":
        line += "\nSpotify matched none of the identifiers: check the normalization options"
    elif report.status == "PROCESSING" and report.action in ("created", "replaced"):
        line += (
            "\nstill processing (Spotify can take up to three days); check later with "
            f"`spotify-audience-sync audiences get {report.audience_id}`"
        )
    return line


def _write_report(path: str, data: dict[str, Any], out: Output) -> None:
    """Write the report; a failure now (the path was checked first) is a warning, never the
    run's outcome: the audience has already been changed, and a scheduler must not retry."""
    from spotify_audience_sync.errors import OutputError
    from spotify_audience_sync.segment.report import write_json

    try:
        write_json(path, data)
    except OutputError as exc:
        out.warning(str(exc), code="report_not_written")


def sync_options(settings: Settings, flags: dict[str, Any]) -> SyncOptions:
    """The sync's options: flags over settings."""
    from spotify_audience_sync.sync.mirror import SyncOptions

    return SyncOptions(
        ad_account_id=settings.account_id,
        audience_name=flags.get("audience_name"),
        audience_id=flags.get("audience_id"),
        description=flags.get("description"),
        dry_run=bool(flags.get("dry_run")),
        wait=not flags.get("no_wait"),
        wait_timeout=settings.wait_timeout,
        allow_shrink=bool(flags.get("allow_shrink")),
        max_reject_rate=settings.max_reject_rate,
        force=bool(flags.get("force")),
        chunk_size=settings.upload_chunk_size,
    )


def run_sync(
    settings: Settings,
    input_path: str | None,
    fmt: Format,
    flags: dict[str, Any],
    *,
    report_path: str | None,
    out: Output,
) -> tuple[int, SyncReport]:
    """Prepare, then mirror; print the summary, write the report; return the exit code.

    The segment is ``input_path``, or the query ``flags["query"]`` on the settings' database.
    """
    from spotify_audience_sync.errors import EXIT_SIGINT, EXIT_SIGTERM, SyncError
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.sync.backend import open_state
    from spotify_audience_sync.sync.mirror import SyncReport, validate_options

    options = sync_options(settings, flags)
    validate_options(options)  # before reading anything: a bad name fails in milliseconds
    # ... and before the first request: nothing after a write to Spotify may fail the run.
    for path, flag in ((report_path, "--report"), (flags.get("rejects_path"), "--rejects")):
        if path:
            check_writable(path, flag, inputs=(input_path,))
    report = SyncReport(ad_account_id=options.ad_account_id)
    report.audience_name = options.audience_name or None
    report.audience_id = options.audience_id or None
    kept: dict[str, Any] = {}
    with open_state(settings.state_location) as backend:
        started, clock = _now(), time.monotonic()
        code: int = 1
        error: str | None = None
        try:
            code = _sync_with_state(
                settings,
                input_path,
                fmt,
                flags,
                options,
                report,
                backend,
                report_path=report_path,
                out=out,
                kept=kept,
            )
        except SyncError as exc:
            code, error = exc.exit_code, str(exc)
            raise
        except KeyboardInterrupt:
            code, error = EXIT_SIGINT, "interrupted (SIGINT)"
            raise
        except BaseException as exc:
            if type(exc).__name__ == "Terminated":  # cli.main's SIGTERM
                code, error = EXIT_SIGTERM, "terminated (SIGTERM)"
            else:
                code, error = 1, f"internal error ({type(exc).__name__})"
            raise
        finally:
            prepared = kept.get("prepared")
            _record(backend, report, prepared, started, time.monotonic() - clock, code, error, out)
    return code, report


def _sync_with_state(
    settings: Settings,
    input_path: str | None,
    fmt: Format,
    flags: dict[str, Any],
    options: SyncOptions,
    report: SyncReport,
    backend: StateBackend,
    *,
    report_path: str | None,
    out: Output,
    kept: dict[str, Any],
) -> int:
    """The run with its state backend open: tokens kept in it too, the mirror locked by it."""
    from spotify_audience_sync.errors import SyncError
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.segment.warehouse import open_input
    from spotify_audience_sync.spotify.factory import ads_client, oauth_session
    from spotify_audience_sync.sync.many import outcome_code
    from spotify_audience_sync.sync.mirror import mirror
    from spotify_audience_sync.sync.tokens import token_sinks

    prepared: PreparedSegment | None = None
    tokens = oauth_session(settings, sinks=token_sinks(backend, settings))
    try:
        with open_input(
            input_path, fmt, flags.get("query"), settings.database_url, encoding=settings.encoding
        ) as source:
            chosen = announce_columns(out, source, prepare_options(settings, flags))
            with out.phase("read") as progress:
                prepared = prepare_segment(source, chosen, on_progress=progress)
        kept["prepared"] = segment = prepared
        if prepared.rejects is not None:  # about the input: complete now, whatever the sync does
            prepared.rejects.commit()

        seen: dict[str, Any] = {}

        def events(name: str, fields: dict[str, Any]) -> None:
            out.event(name, **fields)
            if name == "prepared":  # exact counts are known: show them before anything is sent
                out.summary(segment.report.summary())
                for warning in segment.report.warnings:
                    out.warning(warning, code="column_rejects")
            elif name in ("created", "replaced"):
                seen["since"] = time.monotonic()
            elif name == "status" and fields.get("status") != seen.get("status"):
                seen["status"] = fields.get("status")  # people see each change while waiting
                waited = time.monotonic() - seen.get("since", time.monotonic())
                out.summary(f"  processing: {seen['status']} after {waited:.0f} s")

        with prepared, ads_client(settings, tokens) as client:
            mirror(
                prepared,
                client,
                options,
                uploader=_uploader(out),
                store=backend,
                events=events,
                report=report,
            )
    except SyncError as exc:
        if report_path:  # a scheduler needs the report most when the run failed
            _write_report(report_path, _result(prepared, report) | {"error": exc.to_dict()}, out)
        raise
    finally:
        tokens.close()
    result = _result(prepared, report)
    if report_path:
        _write_report(report_path, result, out)
    out.outcome(_summary(report))  # even with -q: the final result
    code = outcome_code(report, options.wait)
    out.event("result", command="sync", exit_code=code, **result)
    return code


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _record(
    backend: StateBackend,
    report: SyncReport,
    prepared: PreparedSegment | None,
    started: str,
    seconds: float,
    code: int,
    error: str | None,
    out: Output,
    part: int | None = None,
) -> None:
    """One history row for the run, whatever its outcome; a failure to write it is a warning
    (the run's own outcome, already decided, is what a scheduler must see). A run of many
    audiences records one row each: ``part`` numbers them (``<run id>.<part>``)."""
    from spotify_audience_sync.cli.output import run_id
    from spotify_audience_sync.errors import SyncError
    from spotify_audience_sync.sync.backend import RunRecord

    counts = {}
    if prepared is not None and report.identifiers:
        counts = {k: c.written for k, c in prepared.report.identifiers.items()}
    record = RunRecord(
        run_id=run_id() if part is None else f"{run_id()}.{part}",
        started_at=started,
        finished_at=_now(),
        ad_account_id=report.ad_account_id,
        audience_id=report.audience_id,
        audience_name=report.audience_name,
        action=report.action,
        identifiers=report.identifiers,
        counts=counts,
        bytes=report.bytes,
        fingerprint=report.fingerprint,
        status=report.status,
        size_min=report.size_min,
        size_max=report.size_max,
        exit_code=code,
        seconds=round(seconds, 3),
        error=error,
    )
    try:
        backend.record_run(record)
    except SyncError as exc:
        out.warning(f"the run was not recorded in the history: {exc}", code="history_not_written")


def _synthetic_segment(directory: Path) -> str:
    """A made-up segment (no one's data) for rehearsals where fixtures/ is not at hand."""
    from spotify_audience_sync.sandbox.segment import generate

    path = directory / "synthetic-segment.csv"
    generate(3000, seed=7, device_ids=True).write_csv(path)
    return str(path)


def _result(prepared: PreparedSegment | None, report: SyncReport) -> dict[str, Any]:
    """The JSON report: what was prepared and what the sync did (counts and ids only), under
    the run id that `history` shows."""
    from spotify_audience_sync.cli.output import run_id

    return {
        "run_id": run_id(),
        "prepare": prepared.report.to_dict() if prepared is not None else None,
        "sync": report.to_dict(),
    }


def _uploader(out: Output) -> Uploader:
    """The resumable upload, with a progress bar in bytes."""
    from spotify_audience_sync.spotify.upload import UploadResult, upload_file

    def upload(
        upload_url: str, chunks: Any, *, total_bytes: int | None, chunk_size: int
    ) -> UploadResult:
        with out.phase("upload", total=total_bytes, unit="bytes") as progress:
            return upload_file(
                upload_url,
                chunks,
                total_bytes=total_bytes,
                chunk_size=chunk_size,
                on_progress=progress,
            )

    return upload


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
    fmt: Format,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **flags: Any,
) -> None:
    """Make a Spotify customer-list audience hold exactly the segment in INPUT (Mirror mode).

    The audience is found by --audience-id, or by its exact --audience-name (created when
    there is none), and its whole membership is replaced by the segment's identifiers.
    INPUT is a file as for `prepare`, or give --query SQL and --database-url instead.
    """
    require_one_input(input_path, flags.get("query"))
    many = flags.get("audience_column") is not None
    if many and (flags.get("audience_name") or flags.get("audience_id")):
        raise click.UsageError(
            "--audience-column names each audience by --audience-name-template: "
            "drop --audience-name / --audience-id"
        )
    if many != bool(flags.get("audience_name_template")):
        raise click.UsageError("--audience-column and --audience-name-template go together")
    if not many and bool(flags.get("audience_name")) == bool(flags.get("audience_id")):
        raise click.UsageError(
            "name the audience with exactly one of --audience-name or --audience-id"
        )
    settings = load_cli_settings(
        **{k: flags.get(k) for k in SETTING_FLAGS},
        ad_account_id=flags.get("ad_account_id"),
        wait_timeout=flags.get("wait_timeout"),
        upload_chunk_size=flags.get("chunk_size"),
        **state_settings(flags),
    )
    out = make_output(settings.log_format, quiet, verbose)
    if many:
        from spotify_audience_sync.cli.many import run_sync_many

        base = sync_options(settings, flags)
        code = run_sync_many(
            settings, input_path, fmt, flags, base, report_path=report_path, out=out
        )
    else:
        code, _ = run_sync(settings, input_path, fmt, flags, report_path=report_path, out=out)
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
        flags: dict[str, Any] = {"audience_name": DEMO_AUDIENCE, "description": "demo segment"}
        code, report = run_sync(settings, input_path, "auto", flags, report_path=None, out=out)
        assert report.audience_id is not None
        members = sandbox.membership(report.audience_id)
        click.echo(
            f"the sandbox received {len(members):,} rows for the audience "
            f"(the prepared file had {report.identifiers:,} identifiers)",
            err=True,
        )
        click.echo("syncing the same segment again:", err=True)
        quiet = Output("human", verbosity=-1)
        again, _ = run_sync(settings, input_path, "auto", flags, report_path=None, out=quiet)
        listed = sandbox.audiences.list(sandbox.ad_account_id, {})["audiences"]
        click.echo(f"audiences in the ad account: {len(listed)} (no duplicate)", err=True)
    raise SystemExit(code or again)
