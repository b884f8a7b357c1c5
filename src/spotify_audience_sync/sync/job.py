"""The Job: one run, whoever starts it (`sync`, `sync --audience-column`, `run PLAN`, `demo`,
or :func:`spotify_audience_sync.sync_audience` from Python).

A run is more than a Mirror sync: it opens the state backend (which also keeps the tokens and
the locks), the OAuth session and the API client; reads the segment; runs one Mirror sync per
audience; leaves one history row per audience, whatever the outcome; and tells what happens
through one callback of :class:`JobEvent`. Written once here, the CLI and the Python API cannot
differ in a guard, a lock or a history row. Output (lines, JSON, progress bars) stays with the
caller: the Job only emits events and asks for a progress ``phase``.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spotify_audience_sync.errors import (
    EXIT_EMPTY,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STILL_PROCESSING,
    SyncError,
    worst_exit_code,
)
from spotify_audience_sync.sync.events import JobEvent, Phase
from spotify_audience_sync.sync.history import history_row
from spotify_audience_sync.sync.many import (
    AudienceOutcome,
    audience_options,
    check_groups,
    mirror_groups,
    outcome_code,
)
from spotify_audience_sync.sync.mirror import Mirror, SyncReport, validate_options
from spotify_audience_sync.sync.orphans import claim, find_orphans, owner_key, prune_orphans
from spotify_audience_sync.sync.reading import chosen_columns, open_segment, with_suppression
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    from pathlib import Path

    from spotify_audience_sync.segment.pipeline import PreparedSegment, PrepareOptions
    from spotify_audience_sync.segment.sources import Source
    from spotify_audience_sync.settings import Settings
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.spotify.upload import UploadResult
    from spotify_audience_sync.sync.backend import StateBackend
    from spotify_audience_sync.sync.mirror import EventSink, Uploader
    from spotify_audience_sync.sync.options import ServiceOptions, SyncRun
    from spotify_audience_sync.sync.plan import PlanSync
    from spotify_audience_sync.sync.runner import SyncOutcome
    from spotify_audience_sync.sync.stop import Stop

__all__ = ["Job", "JobEvent", "Phase"]


@contextlib.contextmanager
def _no_phase(_name: str, **_: Any) -> Iterator[Callable[[int], None]]:
    yield lambda _completed: None


def _ended(exc: BaseException) -> tuple[int, str]:
    """The exit code and history message of a run that raised."""
    if isinstance(exc, SyncError):
        return exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT, "interrupted (SIGINT)"
    if type(exc).__name__ == "Terminated":  # the CLI's SIGTERM
        return EXIT_SIGTERM, "terminated (SIGTERM)"
    return 1, f"internal error ({type(exc).__name__})"


class Job:
    """Runs syncs against Spotify with one settings object; each method is one run."""

    def __init__(
        self,
        settings: Settings,
        *,
        events: Callable[[JobEvent], None] | None = None,
        phase: Phase | None = None,
        run_id: str | None = None,
        uploader: Uploader | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``uploader``, ``sleep`` and ``clock`` go to each Mirror sync (tests pass fakes)."""
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex
        self._events = events
        self._phase: Phase = phase or _no_phase
        self._given_uploader = uploader
        self._timing: dict[str, Any] = {"sleep": sleep, "clock": clock}
        #: The single sync's outcome so far: what a caller reports when :meth:`sync` raises.
        self.last: AudienceOutcome | None = None
        self._warnings: list[str] = []  # the codes of this run's warnings, for its alert
        #: A plan's outcomes, recorded: what a caller reports when :meth:`run_plan` raises.
        self.plan: list[SyncOutcome] | None = None

    def emit(self, event: JobEvent) -> None:
        if event.name == "warning":
            self._warnings.append(str(event.fields.get("code", "warning")))
        if self._events is not None:
            self._events(event)

    def _finish(
        self,
        command: str,
        code: int,
        outcomes: list[AudienceOutcome],
        error: str | None,
        service: ServiceOptions,
    ) -> None:
        """The run's alert and metrics (:mod:`.reporting`): never its outcome."""
        from spotify_audience_sync.sync.reporting import deliver, run_facts

        facts = run_facts(self.run_id, command, code, outcomes, self._warnings, error)
        self._warnings = []  # the next run of this Job starts afresh
        hurry = code in (EXIT_SIGINT, EXIT_SIGTERM)
        for problem, message in deliver(facts, service, hurry=hurry):
            self._warn(message, problem)

    def _check_account(self, tokens: Any, ad_account_id: str) -> None:
        """Read the ad account before any input: a wrong id or no access fails in a second
        (78 or 77), not after a read of millions of rows."""
        from spotify_audience_sync.spotify.factory import ads_client

        settings = self.settings.model_copy(update={"ad_account_id": ad_account_id})
        with ads_client(settings, tokens) as client:
            client.get_ad_account()

    def _warn(self, message: str, code: str, **labels: Any) -> None:
        fields = {"level": "warning", "message": message, "code": code}
        self.emit(JobEvent("warning", fields, labels))

    def _uploader(self) -> Uploader:
        """The resumable upload, reported as a phase in bytes."""
        if self._given_uploader is not None:
            return self._given_uploader
        from spotify_audience_sync.spotify.upload import upload_file

        def upload(
            upload_url: str,
            chunks: Any,
            *,
            total_bytes: int | None,
            chunk_size: int,
            before_finalize: Callable[[int], None] | None = None,
        ) -> UploadResult:
            with self._phase("upload", total=total_bytes, unit="bytes") as progress:
                return upload_file(
                    upload_url,
                    chunks,
                    total_bytes=total_bytes,
                    chunk_size=chunk_size,
                    on_progress=progress,
                    before_finalize=before_finalize,
                )

        return upload

    def _mirror_kwargs(self) -> dict[str, Any]:
        return {**self._timing, "uploader": self._uploader()}

    @contextlib.contextmanager
    def _session(self) -> Iterator[tuple[StateBackend, Any]]:
        """The state backend and the OAuth session (tokens kept in the backend too)."""
        from spotify_audience_sync.spotify.factory import oauth_session
        from spotify_audience_sync.sync.backend import open_state
        from spotify_audience_sync.sync.tokens import token_sinks

        with open_state(self.settings.state_location) as backend:
            tokens = oauth_session(self.settings, sinks=token_sinks(backend, self.settings))
            try:
                yield backend, tokens
            finally:
                tokens.close()

    def record(
        self,
        backend: StateBackend,
        outcome: AudienceOutcome,
        started: str,
        seconds: float,
        part: int | None = None,
    ) -> None:
        """One history row for an audience's sync, whatever its outcome; a failure to write it
        is a warning (the run's own outcome, already decided, is what a scheduler must see)."""
        run_id = self.run_id if part is None else f"{self.run_id}.{part}"
        try:
            backend.record_run(history_row(outcome, run_id, started, seconds))
        except SyncError as exc:
            self._warn(f"the run was not recorded in the history: {exc}", "history_not_written")

    # --- one audience ----------------------------------------------------------------------
    def sync(self, run: SyncRun, source: Source | None = None) -> AudienceOutcome:
        """One Mirror sync of the run's segment (or of ``source``, an open in-process source).

        A SyncError is raised as it is, after the history row is written; ``self.last`` then
        holds what was prepared and done.
        """
        self.last = None
        validate_options(run.sync)  # before reading anything: a bad name fails in milliseconds
        report = SyncReport(
            ad_account_id=run.sync.ad_account_id,
            audience_name=run.sync.audience_name or None,
            audience_id=run.sync.audience_id or None,
        )
        outcome = self.last = AudienceOutcome(None, report, None)
        message: str | None = None
        try:
            with self._session() as (backend, tokens):
                started, clock = utc_stamp(), time.monotonic()
                try:
                    self._check_account(tokens, run.sync.ad_account_id)
                    self._sync_one(run, source, outcome, backend, tokens)
                except BaseException as exc:
                    outcome.exit_code, message = _ended(exc)
                    known = exc.to_dict() if isinstance(exc, SyncError) else {}
                    outcome.error = {**known, "message": message}
                    raise
                finally:
                    self.record(backend, outcome, started, time.monotonic() - clock)
        except BaseException as exc:
            outcome.exit_code, message = _ended(exc)
            raise
        finally:
            self._finish("sync", outcome.exit_code, [outcome], message, run.service)
        return outcome

    def _sync_one(
        self,
        run: SyncRun,
        source: Source | None,
        outcome: AudienceOutcome,
        backend: StateBackend,
        tokens: Any,
    ) -> None:
        from spotify_audience_sync.segment.pipeline import prepare_segment

        # The suppression lists are subtracted as the staged segment is deduplicated, in the
        # Mirror sync's first step: they stay open until it is done. Read before the segment
        # is opened, so a list that fails leaves no open source behind.
        with with_suppression(run.prepare, run.exclude, run.source) as asked:
            segment = open_segment(run.source) if source is None else contextlib.nullcontext(source)
            with segment as opened:
                options = self._columns(opened, asked)
                with self._phase("read") as progress:
                    prepared = prepare_segment(opened, options, on_progress=progress)
            outcome.prepared = prepared
            if prepared.rejects is not None:  # about the input: complete now, whatever follows
                prepared.rejects.commit()
            self._mirror_one(run, prepared, outcome, backend, tokens)
        outcome.exit_code = outcome_code(outcome.report, run.sync.wait)

    def _mirror_one(
        self,
        run: SyncRun,
        prepared: PreparedSegment,
        outcome: AudienceOutcome,
        backend: StateBackend,
        tokens: Any,
    ) -> None:
        from spotify_audience_sync.spotify.factory import ads_client

        with prepared, ads_client(self.settings, tokens) as client:
            mirror = Mirror(
                prepared,
                client,
                run.sync,
                store=backend,
                events=self._single_events(prepared),
                **self._mirror_kwargs(),
            )
            # Mirror's report from now on; what the user named stays in it if a step fails.
            mirror.report.audience_id = outcome.report.audience_id
            mirror.report.audience_name = outcome.report.audience_name
            outcome.report = mirror.report
            mirror.run()

    def _columns(self, source: Source, options: PrepareOptions) -> PrepareOptions:
        chosen, event = chosen_columns(source, options)
        self.emit(event)
        return chosen

    def _single_events(self, prepared: PreparedSegment) -> EventSink:
        """The mirror's events of a single sync, with the lines a person reads beside them:
        exact counts before anything is sent, then each change of status while waiting."""
        seen: dict[str, Any] = {}

        def sink(name: str, fields: dict[str, Any]) -> None:
            text = None
            if name == "prepared":
                text = prepared.report.summary()
            elif name in ("created", "replaced"):
                seen["since"] = time.monotonic()
            elif name == "status" and fields.get("status") != seen.get("status"):
                seen["status"] = fields.get("status")
                waited = time.monotonic() - seen.get("since", time.monotonic())
                text = f"  processing: {seen['status']} after {waited:.0f} s"
            self.emit(JobEvent(name, fields, text=text))
            if name == "prepared":
                for warning in prepared.report.warnings:
                    self._warn(warning, "column_rejects")

        return sink

    def _group_events(self, **labels: Any) -> Callable[[str | None], EventSink]:
        """Each group's event sink: its events carry the group's value (and the sync's name)."""

        def for_group(key: str | None) -> EventSink:
            tags = {**labels, **({"value": key} if key is not None else {})}
            return lambda name, fields: self.emit(JobEvent(name, fields, tags))

        return for_group

    # --- one audience per value of a column --------------------------------------------------
    def sync_groups(self, run: SyncRun, source: Source | None = None) -> list[AudienceOutcome]:
        """Read once, one Mirror sync per value of the run's audience column, a history row
        each; a group that fails is recorded and the others go on. Audiences made for values
        no longer in the column are reported (and deleted with ``prune_orphans``)."""
        assert run.groups is not None
        assert run.groups.template is not None
        validate_options(replace(run.sync, audience_name=run.groups.template))  # at once
        outcomes: list[AudienceOutcome] = []
        code, message = 1, None
        try:
            with self._session() as (backend, tokens):
                started, clock = utc_stamp(), time.monotonic()
                self._check_account(tokens, run.sync.ad_account_id)
                outcomes = self._mirror_groups(run, source, backend, tokens)
                seconds = time.monotonic() - clock
                for part, outcome in enumerate(outcomes, 1):
                    self.record(backend, outcome, started, seconds, part)
            code = worst_exit_code(o.exit_code for o in outcomes)
        except BaseException as exc:
            code, message = _ended(exc)
            raise
        finally:
            self._finish("sync", code, outcomes, message, run.service)
        return outcomes

    def _mirror_groups(
        self, run: SyncRun, source: Source | None, backend: StateBackend, tokens: Any
    ) -> list[AudienceOutcome]:
        from spotify_audience_sync.segment.split import Split, prepare_split
        from spotify_audience_sync.spotify.factory import ads_client

        assert run.groups is not None
        assert run.groups.template is not None
        lists = contextlib.ExitStack()  # the suppression lists: open until every group is done
        with lists:  # ... and read before the source is opened: a failure leaves nothing open
            asked = lists.enter_context(with_suppression(run.prepare, run.exclude, run.source))
            opened = open_segment(run.source) if source is None else contextlib.nullcontext(source)
            with opened as segment, self._phase("read") as progress:
                split = Split(asked, column=run.groups.column, max_groups=run.groups.max_groups)
                (groups,) = prepare_split(segment, [split], on_progress=progress)
            lists = lists.pop_all()
        try:
            options = audience_options(run.sync, run.groups.template, [str(k) for k in groups])
            check_groups(groups)
            self.emit(JobEvent("groups", {"audiences": len(groups), "values": list(options)}))
            with ads_client(self.settings, tokens) as client:
                outcomes = mirror_groups(
                    groups,
                    options,
                    client,
                    store=backend,
                    events=self._group_events(),
                    **self._mirror_kwargs(),
                )
                # The family of audiences is its column and name template, whatever file or
                # query feeds it today (a daily export changes its name).
                owner = owner_key("column", run.groups.column, run.groups.template)
                outcomes += self._orphans(
                    client,
                    backend,
                    owner,
                    outcomes,
                    run.sync.ad_account_id,
                    dry_run=run.sync.dry_run,
                    prune=run.service.prune_orphans,
                )
        finally:
            for prepared in groups.values():
                prepared.close()
            lists.close()
        return outcomes

    def _orphans(
        self,
        client: AdsClient,
        backend: StateBackend,
        owner: str,
        outcomes: list[AudienceOutcome],
        account: str,
        *,
        dry_run: bool,
        prune: bool,
        current: list[str] | None = None,
    ) -> list[AudienceOutcome]:
        """Claim what this run made for ``owner``; report (and prune) what it no longer makes.

        An orphan is reported as a warning and gets a history row of its own."""
        produced = [o.report.audience_id for o in outcomes if o.report.audience_id]
        if not dry_run:  # only what this state created: an adopted audience is never ours
            made = [o.report.audience_id for o in outcomes if o.report.action == "created"]
            claim(backend, account, owner, [i for i in made if i])
        # A group still here whose own sync failed (before it found its audience) is no orphan.
        names = {o.report.audience_name for o in outcomes if o.report.audience_name}
        found = [
            s
            for s in find_orphans(backend, account, owner, produced, current=current)
            if s.audience_name not in names
        ]
        # Delete only after a run whose every audience synced: a failure leaves doubt.
        synced = all(o.exit_code in (0, EXIT_EMPTY, EXIT_STILL_PROCESSING) for o in outcomes)
        delete = prune and not dry_run and synced
        extra: list[AudienceOutcome] = []
        for orphan in prune_orphans(client, backend, found, delete=delete):
            what = {
                "kept": "kept (--prune-orphans deletes it)"
                if synced
                else "kept (not deleted after a run with a failure)",
                "deleted": "deleted",
                "gone": "already gone from Spotify",
                "live": "kept: it is LIVE (in use by an ad set) and cannot be deleted",
                "failed": "kept: deleting it failed (the next run tries again)",
            }[orphan.outcome]
            self._warn(
                f"audience {orphan.audience_name!r} ({orphan.audience_id}) was made for a group "
                f"or plan sync this run no longer has: {what}",
                "orphaned_audience",
                audience_id=orphan.audience_id,
            )
            report = SyncReport(account, orphan.audience_id, orphan.audience_name)
            report.action = "deleted" if orphan.outcome in ("deleted", "gone") else "orphaned"
            extra.append(AudienceOutcome(None, report, None))
        return extra

    # --- a plan ------------------------------------------------------------------------------
    def run_plan(
        self,
        syncs: list[PlanSync],
        *,
        folder: Path,
        parallel: int = 1,
        dry_run: bool = False,
        plan_id: str | None = None,
        complete: bool = False,
    ) -> list[SyncOutcome]:
        """A plan's syncs with one state backend, one OAuth session and one rate limiter
        (Spotify's limits are per app), a history row per audience; then the run's alert and
        metrics. ``plan_id`` (the plan file's path) keys the audiences each sync makes, so
        one that a sync no longer makes is found; with ``complete`` (every sync of the plan
        ran), those of syncs removed from the plan too."""
        from spotify_audience_sync.sync.options import resolve_service

        outcomes: list[SyncOutcome] = []
        code, message = 1, None
        try:
            outcomes = self._run_plan(syncs, folder, parallel, dry_run, plan_id, complete)
            code = worst_exit_code(o.exit_code for o in outcomes)
        except BaseException as exc:
            code, message = _ended(exc)
            raise
        finally:
            done = outcomes or self.plan or []
            audiences = [a for outcome in done for a in outcome.audiences]
            self._finish("run", code, audiences, message, resolve_service(self.settings))
        return outcomes

    def _run_plan(
        self,
        syncs: list[PlanSync],
        folder: Path,
        parallel: int,
        dry_run: bool,
        plan_id: str | None,
        complete: bool,
    ) -> list[SyncOutcome]:
        import threading

        from spotify_audience_sync.settings import named_variables
        from spotify_audience_sync.spotify.factory import ads_client
        from spotify_audience_sync.spotify.ratelimit import RateLimiter
        from spotify_audience_sync.sync.runner import run_plan
        from spotify_audience_sync.sync.stop import Stop

        stop = Stop()
        environ = named_variables(s.database_url_env for s in syncs if s.database_url_env)
        limiter = RateLimiter()
        clients: dict[str, AdsClient] = {}
        lock = threading.Lock()
        with self._session() as (backend, tokens):

            def client_for(account: str) -> AdsClient:
                with lock:
                    if account not in clients:
                        settings = self.settings.model_copy(update={"ad_account_id": account})
                        clients[account] = ads_client(settings, tokens, limiter=limiter)
                    return clients[account]

            started, clock = utc_stamp(), time.monotonic()
            accounts = {sync.ad_account_id or self.settings.account_id for sync in syncs}
            for account in sorted(accounts):
                self._check_account(tokens, account)
            try:
                outcomes = run_plan(
                    syncs,
                    self.settings,
                    client_for,
                    folder=folder,
                    environ=environ,
                    store=backend,
                    parallel=parallel,
                    dry_run=dry_run,
                    events=lambda name, key: self._group_events(sync_name=name)(key),
                    plan_id=plan_id,
                    stop=stop,
                    **self._stoppable(stop),
                )
                if plan_id is not None and not stop.stopped:  # a stopped plan deletes nothing
                    try:
                        self._plan_orphans(
                            backend, syncs, outcomes, (plan_id, complete, dry_run), client_for
                        )
                    except SyncError as exc:  # the syncs' own outcomes stand
                        self._warn(f"orphans not reviewed: {exc}", "orphans_not_reviewed")
            finally:
                for client in clients.values():
                    client.close()
            seconds = time.monotonic() - clock
            audiences = [o for outcome in outcomes for o in outcome.audiences]
            for part, outcome in enumerate(audiences, 1):
                self.record(backend, outcome, started, seconds, part)
        self.plan = outcomes
        if stop.cause is not None:
            raise stop.cause
        return outcomes

    def _stoppable(self, stop: Stop) -> dict[str, Any]:
        """The uploader, sleep and clock of a plan's syncs, which a stop ends at their next
        request or at once in a wait (a test's own uploader and sleep stay as given)."""
        from spotify_audience_sync.spotify.upload import upload_file

        uploader = self._given_uploader or functools.partial(
            upload_file, sleep=stop.sleep, checkpoint=stop.check
        )
        sleep = stop.sleep if self._timing["sleep"] is time.sleep else self._timing["sleep"]
        return {**self._timing, "sleep": sleep, "uploader": uploader}

    def _plan_orphans(
        self,
        backend: StateBackend,
        syncs: list[PlanSync],
        outcomes: list[SyncOutcome],
        plan: tuple[str, bool, bool],
        client_for: Callable[[str], AdsClient],
    ) -> None:
        """Each sync's orphans (a group gone), then, when the whole plan ran (``plan``: its id,
        whether complete, whether a dry run), the audiences of syncs no longer in it; each
        added to its sync's outcome (the plan's removed syncs: to the last one's)."""
        from spotify_audience_sync.sync.options import resolve_service

        plan_id, complete, dry_run = plan
        prune = resolve_service(self.settings).prune_orphans
        owners: list[str] = []
        for sync, outcome in zip(syncs, outcomes, strict=True):
            account = sync.ad_account_id or self.settings.account_id
            owner = owner_key("plan", plan_id, sync.name)
            owners.append(owner)
            if outcome.error is None:  # a sync whose read failed made nothing: no orphans
                outcome.audiences += self._orphans(
                    client_for(account), backend, owner, outcome.audiences, account,
                    dry_run=dry_run, prune=prune,
                )  # fmt: skip
        if not complete or not outcomes or any(o.exit_code not in (0, 3, 5) for o in outcomes):
            return  # a sync removed from the plan is judged only after a clean run of all
        for account in sorted({s.ad_account_id or self.settings.account_id for s in syncs}):
            outcomes[-1].audiences += self._orphans(
                client_for(account), backend, owner_key("plan", plan_id), [], account,
                dry_run=dry_run, prune=prune, current=owners,
            )  # fmt: skip
