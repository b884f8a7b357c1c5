"""The segment a run reads: its source opened, its identifier columns chosen and announced.

Shared by the Job and by what only prepares (`prepare`, the Python API's ``prepare``), and
kept light: no Spotify client, no state backend is imported for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.sync.events import JobEvent

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PrepareOptions
    from spotify_audience_sync.segment.sources import Source
    from spotify_audience_sync.sync.options import ExcludeOptions, SourceOptions

__all__ = ["chosen_columns", "open_segment", "with_suppression"]


def open_segment(options: SourceOptions) -> Source:
    """The source a run reads: a file (or ``-``), or a query on its database."""
    from spotify_audience_sync.segment.warehouse import open_input

    return open_input(
        options.input,
        options.format,
        options.query,
        options.database_url,
        encoding=options.encoding,
        delimiter=options.delimiter,
    )


def chosen_columns(source: Source, options: PrepareOptions) -> tuple[PrepareOptions, JobEvent]:
    """The options with the identifier columns (every column of each type) and the country
    column resolved, and the event that says which were chosen: a column whose name looks like
    data is shown by its position; a consent-like column not applied is named."""
    from spotify_audience_sync.segment.columns import (
        column_label,
        resolve_column_lists,
        resolve_country_column,
    )
    from spotify_audience_sync.segment.consent import consent_like

    columns = resolve_column_lists(source.name, source.columns, options.columns)
    country = resolve_country_column(source.name, source.columns, options.country_column)
    consent = options.consent_column
    if consent is not None and consent not in source.columns:
        raise InputError(f"{source.name}: no column {consent!r} (--consent-column)")

    def shown(name: str) -> str:
        return column_label(name, source.columns.index(name) + 1)

    def label(name: str) -> str:
        return repr(name) if shown(name) == name else shown(name)

    parts = [
        f"{k.key} from {' and '.join(label(n) for n in names)}" for k, names in columns.items()
    ]
    if country is not None:
        parts.append(f"country from {label(country)}")
    if options.consent_column is not None:
        parts.append(f"consent from {label(options.consent_column)}")
    elif unused := consent_like(source.columns):
        named = ", ".join(label(c) for c in unused)
        parts.append(f"consent-like {named} not applied (--consent-column applies it)")
    fields = {
        "columns": {
            kind.key: shown(names[0]) if len(names) == 1 else [shown(n) for n in names]
            for kind, names in columns.items()
        }
    }
    event = JobEvent("columns", fields, text="columns: " + ", ".join(parts))
    return replace(options, columns=columns, country_column=country), event


@contextmanager
def with_suppression(
    options: PrepareOptions, exclude: ExcludeOptions, source: SourceOptions
) -> Iterator[PrepareOptions]:
    """The options with the suppression lists read in and hashed, for the block (their spill
    files go with it); unchanged without lists. The lists are files in any input format (read
    with the run's encoding) and a query on the run's database."""
    if not exclude:
        yield options
        return
    from spotify_audience_sync.segment.suppression import build_suppression
    from spotify_audience_sync.segment.warehouse import open_input

    def sources() -> Iterator[Source]:
        for path in exclude.paths:
            with open_input(path, "auto", encoding=source.encoding) as opened:
                yield opened
        if exclude.query is not None:
            with open_input(None, "auto", exclude.query, source.database_url) as opened:
                yield opened

    # A list has no country column: its phones are read with the default region.
    rules = replace(options.normalize, country_column=None)
    suppression = build_suppression(sources(), rules, options.temp_dir)
    try:
        yield replace(options, suppression=suppression)
    finally:
        suppression.close()
