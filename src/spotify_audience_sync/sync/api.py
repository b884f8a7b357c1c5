"""The Python API: `sync_audience` and `prepare` for an Airflow task, a Dagster asset, a notebook.

A caller gives a path or a data frame it holds (polars, pandas, pyarrow, or anything with
``__arrow_c_stream__``) and options by the names of the settings (``default_region="US"``);
the settings come from the environment and ``.env`` unless given. The run is the CLI's own
:class:`~.job.Job`: the same guards, locks, state and history, the same events (counts and
ids, never a value), errors of the same types with the same exit codes on them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spotify_audience_sync.sync.options import OPTIONS, Overrides, resolve_prepare, resolve_sync

if TYPE_CHECKING:
    from spotify_audience_sync.segment.report import PrepareReport
    from spotify_audience_sync.segment.sources import Source
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.sync.events import JobEvent
    from spotify_audience_sync.sync.mirror import SyncReport

__all__ = ["prepare", "sync_audience"]

#: Keywords for options of a run of many audiences: the CLI's and a plan's, not this API's.
_GROUP_OPTIONS = frozenset({"audience_column", "audience_name_template", "max_audiences"})
_BY_KEYWORD = {option.keyword: option for option in OPTIONS}


def _layers(settings: Settings | None, options: dict[str, Any]) -> tuple[Settings, Overrides]:
    """The settings with the options that are settings laid over them (validated as settings
    are), and the rest as overrides; TypeError for a keyword no option has."""
    from spotify_audience_sync.settings import load_settings

    unknown = sorted(k for k in options if k not in _BY_KEYWORD or k in _GROUP_OPTIONS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    backed = {k: v for k, v in options.items() if _BY_KEYWORD[k].setting is not None}
    if settings is None:
        settings = load_settings(**backed)
    elif backed:
        settings = load_settings(_env_file=None, **{**settings.model_dump(), **backed})
    given = Overrides(
        **{_BY_KEYWORD[k].name: v for k, v in options.items() if _BY_KEYWORD[k].setting is None}
    )
    return settings, given


def _path_or_frame(source: Any) -> tuple[str | None, Source | None]:
    """A path (str or os.PathLike) to open as the CLI would, or an in-process source."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source), None
    from spotify_audience_sync.segment.frames import open_frame

    return None, open_frame(source)


def sync_audience(
    source: Any,
    *,
    audience_name: str | None = None,
    audience_id: str | None = None,
    settings: Settings | None = None,
    events: Callable[[JobEvent], None] | None = None,
    **options: Any,
) -> SyncReport:
    """Make one customer-list audience hold exactly the segment in ``source`` (Mirror sync).

    Name the audience with exactly one of ``audience_name`` (created when there is none) or
    ``audience_id``. ``options`` are the settings' names (``default_region``, ``layout``,
    ``wait_timeout``, ``upload_chunk_size``...) and the sync's (``dry_run``, ``wait``,
    ``allow_shrink``, ``force``, ``description``, ``email_column``...). Returns the report of
    what was done (``action``, ``status``, counts); a refusal or a failure raises the
    :class:`~spotify_audience_sync.errors.SyncError` the CLI would turn into its exit code.
    """
    from spotify_audience_sync.sync.job import Job

    settings, given = _layers(settings, options)
    audience = Overrides(audience_name=audience_name, audience_id=audience_id)
    path, frame = _path_or_frame(source)
    run = resolve_sync(settings, given, audience, input=path)
    outcome = Job(settings, events=events).sync(run, frame)
    return outcome.report


def prepare(
    source: Any,
    output: str | os.PathLike[str],
    *,
    settings: Settings | None = None,
    **options: Any,
) -> PrepareReport:
    """Normalize, hash and deduplicate ``source`` into the upload file at ``output``.

    Nothing is sent anywhere. ``options`` as for :func:`sync_audience`'s pipeline options.
    """
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.sync.reading import chosen_columns, open_segment

    settings, given = _layers(settings, options)
    path, frame = _path_or_frame(source)
    run = resolve_prepare(settings, given, input=path)
    with frame if frame is not None else open_segment(run.source) as opened:
        chosen, _ = chosen_columns(opened, run.prepare)
        prepared = prepare_segment(opened, chosen)
    with prepared:
        prepared.report.output = os.fspath(output)
        prepared.write_file(os.fspath(output))
        if prepared.rejects is not None:
            prepared.rejects.commit()
    return prepared.report
