"""The segment a run reads: its source opened, its identifier columns chosen and announced.

Shared by the Job and by what only prepares (`prepare`, the Python API's ``prepare``), and
kept light: no Spotify client, no state backend is imported for it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from spotify_audience_sync.sync.events import JobEvent

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PrepareOptions
    from spotify_audience_sync.segment.sources import Source
    from spotify_audience_sync.sync.options import SourceOptions

__all__ = ["chosen_columns", "open_segment"]


def open_segment(options: SourceOptions) -> Source:
    """The source a run reads: a file (or ``-``), or a query on its database."""
    from spotify_audience_sync.segment.warehouse import open_input

    return open_input(
        options.input,
        options.format,
        options.query,
        options.database_url,
        encoding=options.encoding,
    )


def chosen_columns(source: Source, options: PrepareOptions) -> tuple[PrepareOptions, JobEvent]:
    """The options with the identifier columns resolved, and the event that says which were
    chosen (a column whose name looks like data is shown by its position)."""
    from spotify_audience_sync.segment.columns import column_label, resolve_columns

    columns = resolve_columns(source.name, source.columns, options.columns)
    shown = {
        kind.key: column_label(name, source.columns.index(name) + 1)
        for kind, name in columns.items()
    }
    text = "columns: " + ", ".join(
        f"{kind.key} from {shown[kind.key]!r}"
        if shown[kind.key] == name
        else f"{kind.key} from {shown[kind.key]}"
        for kind, name in columns.items()
    )
    return replace(options, columns=columns), JobEvent("columns", {"columns": shown}, text=text)
