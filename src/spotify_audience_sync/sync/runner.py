"""Run a plan's syncs: each source read once, N reads at once, every sync to its end.

The unit of work is a *read*: the syncs of a plan that read the same query on the same
database (or the same file) share one pass over the rows (:func:`segment.split.prepare_split`),
then each mirrors its audiences. ``parallel`` reads run at once on threads of one process,
sharing one API client: one OAuth session and one rate limiter, because Spotify's limits are
per app, not per sync. A sync that fails (its settings, its read, one of its audiences) is
recorded and the others go on; the caller's exit code is the worst of all
(:func:`errors.worst_exit_code`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotify_audience_sync.errors import ConfigError, SyncError, worst_exit_code
from spotify_audience_sync.segment.split import Split, prepare_split
from spotify_audience_sync.sync.many import (
    AudienceOutcome,
    audience_name,
    audience_options,
    check_groups,
    mirror_groups,
)
from spotify_audience_sync.sync.mirror import EventSink, SyncOptions, validate_options
from spotify_audience_sync.sync.options import (
    ExcludeOptions,
    Overrides,
    SourceOptions,
    plan_overrides,
    resolve_sync,
)
from spotify_audience_sync.sync.plan import Claim, PlanSync, check_distinct_audiences
from spotify_audience_sync.sync.reading import with_suppression
from spotify_audience_sync.sync.stop import Stop

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend

__all__ = ["STOP_GRACE", "SyncOutcome", "run_plan"]

#: Seconds the syncs get to end once the run is stopped: within Kubernetes' default grace
#: period (30 s), with time left to record their outcomes and print the final object.
STOP_GRACE = 20.0

#: ``events(sync name, group value)``: the event sink of one audience's sync.
Events = Callable[[str, "str | None"], EventSink]


@dataclass
class SyncOutcome:
    """One plan sync's result: its audiences' results, or the error that stopped it."""

    name: str
    audiences: list[AudienceOutcome] = field(default_factory=list)
    error: dict[str, Any] | None = None
    error_code: int = 0

    @property
    def exit_code(self) -> int:
        return worst_exit_code([self.error_code, *(a.exit_code for a in self.audiences)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exit_code": self.exit_code,
            "audiences": [a.to_dict() for a in self.audiences],
            **({"error": self.error} if self.error is not None else {}),
        }


@dataclass(frozen=True)
class _Planned:
    sync: PlanSync
    split: Split
    options: SyncOptions
    source: SourceOptions
    exclude: ExcludeOptions


def _job(sync: PlanSync, settings: Settings, dry_run: bool, folder: Path) -> _Planned:
    """The sync's options: the plan's values over the settings, by the one resolver."""
    planned = plan_overrides(sync, folder)
    run = resolve_sync(settings, planned, Overrides(dry_run=dry_run or None))
    if sync.audience_name_template is not None:
        validate_options(replace(run.sync, audience_name=sync.audience_name_template))
    else:
        validate_options(run.sync)
    split = Split(run.prepare, sync.audience_column, sync.options.max_audiences)
    return _Planned(sync, split, run.sync, run.source, run.exclude)


def _read_units(syncs: list[PlanSync], folder: Path) -> list[list[PlanSync]]:
    """Syncs grouped by what they read, in plan order of each group's first sync."""
    units: dict[tuple[str, ...], list[PlanSync]] = {}
    for sync in syncs:
        units.setdefault(sync.source_key(folder), []).append(sync)
    return list(units.values())


def run_plan(
    syncs: list[PlanSync],
    settings: Settings,
    clients: Callable[[str], AdsClient],
    *,
    folder: Path,
    environ: Mapping[str, str],
    store: StateBackend,
    parallel: int = 1,
    dry_run: bool = False,
    events: Events | None = None,
    plan_id: str | None = None,
    stop: Stop | None = None,
    **kwargs: Any,
) -> list[SyncOutcome]:
    """Run ``syncs``; return each one's outcome, in the order given.

    ``plan_id`` (the plan file) lets a sync whose ``audience_name`` changed rename its audience.
    The reads run on ``parallel`` worker threads; the calling thread only waits for them, so a
    signal there (SIGTERM, Ctrl-C) sets ``stop``: the running syncs end at their next
    checkpoint (see :mod:`sync.stop`), none starts, and after at most :data:`STOP_GRACE`
    seconds every sync has its outcome (143 for those stopped). The signal's exception is then
    in ``stop.cause``, for the caller to raise once it has recorded the outcomes.

    ``clients(ad_account_id)``: an ad account's client (one OAuth session and rate limiter for
    all). ``folder``: the plan's, for relative inputs; ``environ``: the database URLs the plan
    names; ``kwargs`` go to :func:`mirror.mirror` (``uploader``, ``sleep``, ...).
    """
    stop = stop or Stop()
    outcomes = {sync.name: SyncOutcome(sync.name) for sync in syncs}

    claims = _Claims()

    def run_unit(unit: list[PlanSync]) -> None:
        jobs: list[_Planned] = []
        for sync in unit:
            try:
                jobs.append(_job(sync, settings, dry_run, folder))
            except SyncError as exc:
                _fail(outcomes[sync.name], exc)
        if not jobs:
            return
        first = jobs[0]
        # Each sync's suppression lists stay open until its audiences are deduplicated.
        with ExitStack() as lists:
            try:
                jobs = [
                    replace(job, split=replace(job.split, options=lists.enter_context(
                        with_suppression(job.split.options, job.exclude, job.source)
                    )))
                    for job in jobs
                ]  # fmt: skip
                with _open(first.sync, folder, environ, first.source) as source:
                    splits = [job.split for job in jobs]
                    results = prepare_split(source, splits, on_progress=stop.check)
            except SyncError as exc:
                for job in jobs:
                    _fail(outcomes[job.sync.name], exc)
                return
            for job, groups in zip(jobs, results, strict=True):
                if stop.stopped:
                    _close(groups)
                    continue  # no outcome yet: marked as stopped below
                try:
                    claims.take(job, groups)
                except SyncError as exc:
                    _close(groups)
                    _fail(outcomes[job.sync.name], exc)
                    continue
                client = clients(job.options.ad_account_id)
                if plan_id is not None:
                    job = _renamed(job, store, plan_id)
                _mirror_job(job, groups, client, store, outcomes[job.sync.name], events, kwargs)

    _run_units(run_unit, _read_units(syncs, folder), parallel, stop)
    if stop.stopped:  # what the stop kept from starting, or did not end within the grace
        for outcome in outcomes.values():
            if outcome.error is None and not outcome.audiences:
                _fail(outcome, stop.error())
    return [outcomes[sync.name] for sync in syncs]


class _Claims:
    """The audiences the plan's syncs write, as their names render: two syncs (or two groups)
    that would write one audience are refused before either writes (78, both named): the one
    run last would silently replace the other's members. The plan's literal names and ids are
    checked when it is loaded; rendered group names only exist once each sync has read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken: list[Claim] = []

    def take(self, job: _Planned, groups: Mapping[str | None, object]) -> None:
        o, template = job.options, job.sync.audience_name_template
        account = o.ad_account_id
        if template is None:
            kind, value = ("id", o.audience_id) if o.audience_id else ("name", o.audience_name)
            mine = [(f"sync {job.sync.name!r}", account, kind, value or "")]
        else:
            mine = [
                (f"sync {job.sync.name!r} value {value!r}", account, "name",
                 audience_name(template, str(value)))
                for value in groups
            ]  # fmt: skip
        with self._lock:
            check_distinct_audiences([*self._taken, *mine])
            self._taken += mine


def _renamed(job: _Planned, store: StateBackend, plan_id: str) -> _Planned:
    """A sync named by ``audience_name`` whose audience (made by this plan sync before) has
    another name: that audience, by id, to be renamed by the Mirror sync."""
    from spotify_audience_sync.sync.orphans import owner_key

    o = job.options
    if o.audience_id or not o.audience_name or job.sync.audience_column is not None:
        return job
    owner = owner_key("plan", plan_id, job.sync.name)
    made = [s for s in store.owned(o.ad_account_id, owner) if s.owner == owner]
    if len(made) != 1 or made[0].audience_name == o.audience_name:
        return job
    return replace(job, options=replace(o, audience_id=made[0].audience_id))


def _run_units(
    run_unit: Callable[[list[PlanSync]], None],
    units: list[list[PlanSync]],
    parallel: int,
    stop: Stop,
) -> None:
    """Each unit on a worker thread, ``parallel`` at once; a signal here stops them all."""
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="sync")
    futures = [pool.submit(run_unit, unit) for unit in units]
    try:
        for future in futures:
            future.result()
    except Exception:  # a bug: start nothing more, let the running ones end
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    except BaseException as exc:  # SIGTERM, Ctrl-C: stop the running ones too, bounded
        stop.set(exc)
        pool.shutdown(wait=False, cancel_futures=True)
        # Only the running ones: `wait` would count a cancelled one as done only once a
        # worker took it from the queue, which shutdown emptied.
        wait([f for f in futures if not f.cancelled()], timeout=STOP_GRACE)
        return
    pool.shutdown(wait=True)


def _mirror_job(
    job: _Planned,
    groups: dict[str | None, PreparedSegment],
    client: AdsClient,
    store: StateBackend,
    outcome: SyncOutcome,
    events: Events | None,
    kwargs: dict[str, Any],
) -> None:
    name = job.sync.name
    try:
        if job.sync.audience_name_template is not None:
            options = audience_options(
                job.options, job.sync.audience_name_template, [str(k) for k in groups]
            )
            check_groups(groups)
        else:
            options = {None: job.options}
        outcome.audiences = mirror_groups(
            groups,
            options,
            client,
            store=store,
            events=(lambda key: events(name, key)) if events is not None else None,
            **kwargs,
        )
    except SyncError as exc:
        _fail(outcome, exc)
    finally:
        _close(groups)


def _close(groups: dict[str | None, PreparedSegment]) -> None:
    for prepared in groups.values():
        prepared.close()


def _fail(outcome: SyncOutcome, exc: SyncError) -> None:
    outcome.error, outcome.error_code = exc.to_dict(), exc.exit_code


def _open(sync: PlanSync, folder: Path, environ: Mapping[str, str], source: SourceOptions) -> Any:
    from spotify_audience_sync.segment.warehouse import open_input

    if sync.query is None:
        path = str(sync.input_path(folder))
        return open_input(path, sync.format, encoding=source.encoding, delimiter=source.delimiter)
    assert sync.database_url_env is not None
    url = environ.get(sync.database_url_env)
    if not url:
        raise ConfigError(
            f"sync {sync.name!r}: the environment variable {sync.database_url_env} "
            "(database_url_env) is not set"
        )
    return open_input(None, "auto", sync.query, url)
