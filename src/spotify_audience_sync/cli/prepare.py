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
    prepare_options,
    require_one_input,
    segment_options,
)

if TYPE_CHECKING:
    from spotify_audience_sync.segment.sources import Format


@click.command()
@segment_options
@click.option(
    "-o", "--output", required=True, help="Where to write the upload file ('-' for stdout)."
)
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
    from spotify_audience_sync.segment.outputs import AtomicFile, check_writable
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.segment.report import write_json
    from spotify_audience_sync.segment.warehouse import open_input

    require_one_input(input_path, flags.get("query"))
    settings = load_cli_settings(**{k: flags.get(k) for k in SETTING_FLAGS})
    out = make_output(settings.log_format, quiet, verbose, stdout_is_data=output == "-")
    options = prepare_options(settings, flags)
    checks = ((output, "--output"), (report_path, "--report"), (options.rejects_path, "--rejects"))
    for path, flag in checks:
        if path:  # before anything is read: a bad path fails in milliseconds
            check_writable(path, flag)
    with open_input(
        input_path, fmt, flags.get("query"), settings.database_url, encoding=settings.encoding
    ) as source:
        options = announce_columns(out, source, options)
        with out.phase("read") as progress:
            prepared = prepare_segment(source, options, on_progress=progress)
    with prepared:
        prepared.report.output = "<stdout>" if output == "-" else output
        if output == "-":
            prepared.write_to(sys.stdout.buffer)
            sys.stdout.buffer.flush()
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
