"""`prepare`: the offline half of `sync`, a segment in and the upload file out."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from spotify_audience_sync.cli.options import (
    cli_settings,
    flag_overrides,
    make_output,
    max_audiences_option,
    require_one_input,
    segment_options,
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import LogFormat, Output
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.sync.options import PrepareRun


@click.command()
@segment_options
@click.option(
    "-o",
    "--output",
    required=True,
    help="Where to write the upload file ('-' for stdout); with --audience-column, a path "
    "with {value} in it, one file per value.",
)
@click.option(
    "--audience-column",
    metavar="COL",
    help="One upload file per value of this column (one read).",
)
@max_audiences_option
def prepare(
    input_path: str | None,
    query: str | None,
    output: str,
    fmt: Format,
    report_path: str | None,
    log_format: LogFormat | None,
    quiet: bool,
    verbose: int,
    **options: Any,
) -> None:
    """Normalize, hash and deduplicate a segment into the file Spotify matches against.

    INPUT is a CSV (optionally gzip), TSV, NDJSON or Parquet file, or '-' for stdin; or
    give --query SQL and --database-url instead. Nothing is sent anywhere: this is the
    offline half of `sync`.
    """
    from spotify_audience_sync.sync.options import resolve_prepare

    require_one_input(input_path, query)
    given = flag_overrides(fmt, **options)
    settings = cli_settings(given, log_format)
    stdout_is_data = output == "-" and given.audience_column is None
    out = make_output(settings.log_format, quiet, verbose, stdout_is_data=stdout_is_data)
    run = resolve_prepare(settings, given.validated_by(settings), input=input_path, query=query)
    if run.groups is not None:
        _prepare_many(run, output, report_path, out)
    else:
        _prepare_one(run, output, report_path, out, quiet=quiet)


def _prepare_one(
    run: PrepareRun, output: str, report_path: str | None, out: Output, *, quiet: bool
) -> None:
    """One upload file (or stdout) from the whole segment."""
    from spotify_audience_sync.cli.results import job_events
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.sync.reading import chosen_columns, open_segment, with_suppression

    checks = (
        (output, "--output"),
        (report_path, "--report"),
        (run.prepare.rejects_path, "--rejects"),
    )
    for path, flag in checks:
        if path:  # before anything is read: a bad path fails in milliseconds
            check_writable(path, flag, inputs=run.inputs)
    with with_suppression(run.prepare, run.exclude, run.source) as asked:
        with open_segment(run.source) as source:
            options, event = chosen_columns(source, asked)
            job_events(out)(event)
            with out.phase("read") as progress:
                prepared = prepare_segment(source, options, on_progress=progress)
        _write_prepared(prepared, output, report_path)
    summary = prepared.report.summary()
    out.summary(summary)
    if quiet:  # -q still shows the final result: the line saying what was written
        out.outcome(summary.splitlines()[-1])
    for warning in prepared.report.warnings:
        out.warning(warning, code="column_rejects")
    out.event("result", command="prepare", exit_code=0, report=prepared.report.to_dict())


def _write_prepared(prepared: PreparedSegment, output: str, report_path: str | None) -> None:
    """The upload file (or stdout), the report and the rejects report, put in place together."""
    from spotify_audience_sync.segment.outputs import AtomicFile, StreamTarget
    from spotify_audience_sync.segment.report import write_json

    with prepared:
        prepared.report.output = "<stdout>" if output == "-" else output
        if output == "-":
            stdout = StreamTarget(sys.stdout.buffer, "--output")
            prepared.write_to(stdout)
            stdout.flush()
            if report_path:
                write_json(report_path, prepared.report.to_dict())
            if prepared.rejects is not None:
                prepared.rejects.commit()
        else:
            # The output is put in place only once the report is written too: a run that fails
            # leaves neither a complete output nor a report behind.
            with AtomicFile(output, "--output", mode=0o644) as target:
                prepared.write_to(target)
                if report_path:
                    write_json(report_path, prepared.report.to_dict())
                if prepared.rejects is not None:
                    prepared.rejects.commit()
                target.commit()


def _prepare_many(run: PrepareRun, output: str, report_path: str | None, out: Output) -> None:
    """`prepare --audience-column`: one read, one upload file per value."""
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.segment.report import write_json
    from spotify_audience_sync.segment.split import Split, prepare_split
    from spotify_audience_sync.sync.reading import open_segment, with_suppression

    assert run.groups is not None
    if "{value}" not in output or output == "-":
        raise click.UsageError("with --audience-column, --output is a path with {value} in it")
    if report_path:
        check_writable(report_path, "--report", inputs=run.inputs)
    with with_suppression(run.prepare, run.exclude, run.source) as asked:
        split = Split(asked, run.groups.column, run.groups.max_groups)
        with open_segment(run.source) as source, out.phase("read") as progress:
            (groups,) = prepare_split(source, [split], on_progress=progress)
        reports = _write_groups(groups, output, out, run.inputs)
    if report_path:
        write_json(report_path, {"audiences": reports})
    out.outcome(f"{len(groups)} files written, one per value of {run.groups.column!r}")
    out.event("result", command="prepare", exit_code=0, audiences=reports)


def _write_groups(
    groups: dict[str | None, PreparedSegment], output: str, out: Output, inputs: tuple[str, ...]
) -> dict[str, Any]:
    """One upload file per group (the value in its name); the groups' reports, by value."""
    from spotify_audience_sync.errors import ConfigError
    from spotify_audience_sync.segment.outputs import check_writable

    try:
        paths: dict[str | None, str] = {}
        for value in groups:
            text = str(value)
            if "/" in text or "\\" in text or text.strip() in ("", ".", ".."):
                raise ConfigError(
                    f"the value {text!r} of --audience-column cannot be part of a file name"
                )
            paths[value] = output.replace("{value}", text)
        for path in paths.values():
            check_writable(path, "--output", inputs=inputs)
        reports: dict[str, Any] = {}
        for value, prepared in groups.items():
            prepared.report.output = paths[value]
            prepared.write_file(paths[value])
            reports[str(value)] = prepared.report.to_dict()
            out.summary(f"[{value}] " + prepared.report.summary().splitlines()[-1])
            for warning in prepared.report.warnings:
                out.warning(f"[{value}] {warning}", code="column_rejects")
    finally:
        for prepared in groups.values():
            prepared.close()
    return reports
