"""`prepare`: the offline half of `sync`, a segment in and the upload file out."""

from __future__ import annotations

import sys
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
)

if TYPE_CHECKING:
    from spotify_audience_sync.cli.output import Output
    from spotify_audience_sync.segment.sources import Format
    from spotify_audience_sync.settings import Settings


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
    output: str,
    fmt: Format,
    report_path: str | None,
    quiet: bool,
    verbose: int,
    **flags: Any,
) -> None:
    """Normalize, hash and deduplicate a segment into the file Spotify matches against.

    INPUT is a CSV (optionally gzip), TSV, NDJSON or Parquet file, or '-' for stdin; or
    give --query SQL and --database-url instead. Nothing is sent anywhere: this is the
    offline half of `sync`.
    """
    from spotify_audience_sync.segment.outputs import AtomicFile, StreamTarget, check_writable
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.segment.report import write_json
    from spotify_audience_sync.segment.warehouse import open_input

    require_one_input(input_path, flags.get("query"))
    settings = load_cli_settings(**{k: flags.get(k) for k in SETTING_FLAGS})
    if flags.get("audience_column"):
        out = make_output(settings.log_format, quiet, verbose)
        _prepare_many(settings, input_path, output, fmt, report_path, flags, out)
        return
    out = make_output(settings.log_format, quiet, verbose, stdout_is_data=output == "-")
    options = prepare_options(settings, flags)
    checks = ((output, "--output"), (report_path, "--report"), (options.rejects_path, "--rejects"))
    for path, flag in checks:
        if path:  # before anything is read: a bad path fails in milliseconds
            check_writable(path, flag, inputs=(input_path,))
    with open_input(
        input_path, fmt, flags.get("query"), settings.database_url, encoding=settings.encoding
    ) as source:
        options = announce_columns(out, source, options)
        with out.phase("read") as progress:
            prepared = prepare_segment(source, options, on_progress=progress)
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
    summary = prepared.report.summary()
    out.summary(summary)
    if quiet:  # -q still shows the final result: the line saying what was written
        out.outcome(summary.splitlines()[-1])
    for warning in prepared.report.warnings:
        out.warning(warning, code="column_rejects")
    out.event("result", command="prepare", exit_code=0, report=prepared.report.to_dict())


def _prepare_many(
    settings: Settings,
    input_path: str | None,
    output: str,
    fmt: Format,
    report_path: str | None,
    flags: dict[str, Any],
    out: Output,
) -> None:
    """`prepare --audience-column`: one read, one upload file per value."""
    from spotify_audience_sync.errors import ConfigError
    from spotify_audience_sync.segment.outputs import check_writable
    from spotify_audience_sync.segment.report import write_json
    from spotify_audience_sync.segment.split import Split, prepare_split
    from spotify_audience_sync.segment.warehouse import open_input

    if "{value}" not in output or output == "-":
        raise click.UsageError("with --audience-column, --output is a path with {value} in it")
    if report_path:
        check_writable(report_path, "--report", inputs=(input_path,))
    split = Split(
        prepare_options(settings, flags), flags["audience_column"], flags["max_audiences"]
    )
    with (
        open_input(input_path, fmt, flags.get("query"), settings.database_url) as source,
        out.phase("read") as progress,
    ):
        (groups,) = prepare_split(source, [split], on_progress=progress)
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
            check_writable(path, "--output", inputs=(input_path,))
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
    if report_path:
        write_json(report_path, {"audiences": reports})
    out.outcome(f"{len(groups)} files written, one per value of {flags['audience_column']!r}")
    out.event("result", command="prepare", exit_code=0, audiences=reports)
