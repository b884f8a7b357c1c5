"""Mirror sync: make one customer-list audience hold exactly the prepared segment.

The only module that knows the whole sequence, one named step of :class:`Mirror` each::

    stage: guards from upper bounds (accepted, before deduplication)   ← nothing sent yet
    find: lock the audience; resolve it (id, or exact name; never two with one name)
    count: only when the run does not stream (below): exact counts, size, fingerprint
    decide: shrink guards; skip if the set is unchanged (fingerprint) and not EMPTY; dry run
    upload: upload URL (new, or replacement) → resumable upload
    create (new only, then settle a race of creates) or replace; remember the audience at once
    poll until BOOKABLE / LIVE / EMPTY or the wait timeout; record the state

Streaming: deduplicating and encoding the staged hashes is one pass, and the upload consumes
it as it is produced, chunk by chunk, rather than after a first pass that only counts. The
exact guards and the unchanged check then run where the upload would complete the object
(``before_finalize``): a refusal, or a set found unchanged, cancels the session, so nothing is
created or replaced. That spends an upload only when it is refused or needless, so a run
streams only when it is likely to upload anyway: a new audience, ``--force``, no state, or
staged records that differ from the last sync's (``Stage.multiset_digest``, known before
deduplication). A run whose staged records equal the last sync's, a dry run and a small
segment (under :data:`STREAM_FROM` identifiers, where overlap saves nothing) count first, and
skip or refuse before any byte is sent, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from spotify_audience_sync.errors import (
    ConfigError,
    RemoteError,
    SafetyError,
    SyncError,
    TransientError,
    UploadSessionLostError,
    UsageError,
)
from spotify_audience_sync.segment.quality import DEFAULT_MAX_REJECT_RATE
from spotify_audience_sync.spotify.models import Audience, AudienceStatus
from spotify_audience_sync.sync.guards import (
    MAX_BYTES,
    MIN_IDENTIFIERS,
    check_guards,
    identifier_count,
)
from spotify_audience_sync.sync.names import check_name, clean_name, near_misses
from spotify_audience_sync.sync.report import Action, SyncReport
from spotify_audience_sync.sync.state import StateStore, SyncState
from spotify_audience_sync.sync.upkeep import ensure_lookalike, rename, wanted_edits
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend

__all__ = [
    "MAX_BYTES",
    "MIN_IDENTIFIERS",
    "Action",
    "Mirror",
    "SyncOptions",
    "SyncReport",
    "Uploader",
    "check_guards",
    "mirror",
    "validate_options",
]

log = logging.getLogger(__name__)

# A settled status read after a replacement belongs to it only if updated since the upload
# began; the slack absorbs clock differences between this machine and Spotify.
FRESHNESS_SLACK = timedelta(seconds=60)
#: Seconds between creating an audience and listing its name to settle a race of creates: a rival
#: created within the same second (``created_at`` has whole seconds) is visible by then.
CREATE_SETTLE = 1.5
#: How many times a run that finds several audiences of its name looks again (2 x CREATE_SETTLE
#: apart) before refusing: long enough for the losers of a race of creates to delete theirs.
RACE_RELISTS = 3
#: Segments with fewer accepted identifiers than this count exactly before uploading (the
#: guards then refuse before a byte is sent); larger ones stream (see the module docstring).
STREAM_FROM = 200_000


class _Unchanged(Exception):
    """Raised where the upload would complete: the set equals the last sync's after all."""


EventSink = Callable[[str, dict[str, Any]], None]


class UploadOutcome(Protocol):
    """What an uploader reports back (see ``upload.UploadResult``)."""

    @property
    def requests(self) -> int: ...
    @property
    def resumes(self) -> int: ...
    @property
    def bytes_resent(self) -> int: ...


class Uploader(Protocol):
    """Uploads a streamed file to a signed URL (``upload.upload_file``)."""

    def __call__(
        self,
        upload_url: str,
        chunks: Any,
        *,
        total_bytes: int | None,
        chunk_size: int,
        before_finalize: Callable[[int], None] | None = None,
    ) -> UploadOutcome:
        """``before_finalize(total)`` runs before the request that completes the object; if
        it raises, the session is cancelled (nothing completed) and the exception propagates."""
        ...


@dataclass(frozen=True)
class SyncOptions:
    """How to sync; mirrors the ``sync`` flags."""

    ad_account_id: str
    audience_name: str | None = None
    audience_id: str | None = None
    description: str | None = None
    dry_run: bool = False
    wait: bool = True
    wait_timeout: float = 3600.0
    allow_shrink: bool = False
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    force: bool = False
    chunk_size: int = 8 * 1024 * 1024
    lookalike: bool = False
    poll_interval: float = 2.0
    max_poll_interval: float = 60.0

    def __post_init__(self) -> None:  # "NU 200k " means "NU 200k": see sync/names.py
        object.__setattr__(self, "audience_name", clean_name(self.audience_name))


class Mirror:
    """One Mirror sync of ``prepared`` to the audience ``options`` names, as named steps.

    ``report`` is filled as the steps run and stays readable when one fails; a
    :class:`~spotify_audience_sync.errors.SyncError` from :meth:`run` carries it as ``report``,
    so no caller passes in an object to be mutated.
    """

    def __init__(
        self,
        prepared: PreparedSegment,
        client: AdsClient,
        options: SyncOptions,
        *,
        uploader: Uploader | None = None,
        store: StateBackend | None = None,
        events: EventSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if uploader is None:
            from spotify_audience_sync.spotify.upload import upload_file

            uploader = upload_file
        self.prepared, self.client, self.options, self.uploader = (
            prepared,
            client,
            options,
            uploader,
        )
        self.store: StateBackend = store if store is not None else StateStore()
        self.events, self.sleep, self.clock = events, sleep, clock
        self.report = SyncReport(
            ad_account_id=options.ad_account_id,
            audience_id=options.audience_id or None,
            audience_name=options.audience_name or None,
        )
        self._started = clock()
        self._owned = True  # False once the run continues on an audience a rival run created

    def run(self) -> SyncReport:
        """Run every step; a SyncError leaves with ``exc.report`` (what was done until then)."""
        try:
            validate_options(self.options)
            self.stage()
            with ExitStack() as locks:
                audience = self.find(locks)
                last = self._last(audience)
                if not self._streams(audience, last):
                    self.count()
                skip = self.decide(audience, last)  # guards first: a refused run renames nothing
                audience = self.align(audience)
                if not skip:
                    audience = self.write(audience, last)
                if audience is not None:
                    self.keep_lookalike(audience)
            return self.finish()
        except SyncError as exc:
            exc.report = self.report
            raise

    def emit(self, event: str, *, level: str = "info", **fields: Any) -> None:
        log.log(logging.WARNING if level == "warning" else logging.INFO, "%s %s", event, fields)
        if self.events is not None:
            self.events(event, {"level": level, **fields} if level != "info" else fields)

    # --- the steps ---------------------------------------------------------------------------
    def stage(self) -> None:
        """Guards from upper bounds (accepted identifiers) before any request: a segment sure
        to be refused is refused before the audience is even looked up."""
        self._started = self.clock()
        self.report.seconds["read"] = self.prepared.report.seconds
        self.report.rows_with_identifier = self.prepared.report.rows_with_identifier
        self._guard(None)

    def _guard(self, last: SyncState | None) -> None:
        """The guards: from bounds while the counts are not exact, exact once they are. A
        refusal from bounds is confirmed by counting, so its message and report say the real
        numbers (a refused segment is cheap to count: it is small, or it is refused anyway)."""
        if self.report.fingerprint is not None:
            check_guards(self.prepared, last, self.options)
            return
        try:
            check_guards(self.prepared, last, self.options, bound=True)
        except SafetyError:
            self.count()  # raises for the guards that need no last sync
            check_guards(self.prepared, last, self.options)

    def count(self) -> None:
        """Exact counts, size and fingerprint from the staged hashes (a pass of their own)."""
        started = self.clock()
        self.prepared.finalize()
        self.report.seconds["dedup"] = self.clock() - started
        self._counted()

    def _counted(self) -> None:
        """The exact counts into the report, once known (after :meth:`count`, or as the
        streamed upload reaches its end), and the guards the bounds could not decide."""
        report, prepared = self.report, self.prepared
        report.identifiers = identifier_count(prepared)
        report.bytes = prepared.report.bytes_written
        if report.fingerprint is None:  # once (a restarted streamed upload counts again)
            self.emit("prepared", identifiers=report.identifiers, bytes=report.bytes)
        report.fingerprint = prepared.report.fingerprint
        check_guards(prepared, None, self.options)

    def _last(self, audience: Audience | None) -> SyncState | None:
        if audience is None:
            return None
        return self.store.load(self.options.ad_account_id, audience.id)

    def _streams(self, audience: Audience | None, last: SyncState | None) -> bool:
        """Whether the upload streams from the deduplicating pass (module docstring)."""
        o, prepared = self.options, self.prepared
        accepted = sum(c.accepted for c in prepared.report.identifiers.values())
        if o.dry_run or accepted < STREAM_FROM:
            return False
        if audience is None or last is None or o.force:
            return True
        # State from before multiset digests (empty): count first this once, as before.
        return bool(last.staged) and (
            last.staged != prepared.staged_digest or last.layout != prepared.layout
        )

    def find(self, locks: ExitStack) -> Audience | None:
        """Lock by what the user named, resolve, then lock by the audience's id as well.

        So a run by name and a run by id of the same audience cannot overlap either.
        None: the audience is to be created.
        """
        o = self.options
        reference = o.audience_id or o.audience_name or ""
        locks.enter_context(self.store.lock(o.ad_account_id, reference))
        audience = self._by_id(o.audience_id) if o.audience_id else self._by_name()
        if audience is not None:
            if audience.id != reference:
                locks.enter_context(self.store.lock(o.ad_account_id, audience.id))
            self.report.audience_id, self.report.audience_name = audience.id, audience.name
            self.report.status = _status(audience)
        return audience

    def align(self, audience: Audience | None) -> Audience | None:
        """Name and description as the run gives them: PATCHed (a dry run says it would)."""
        o = self.options
        if audience is None:
            return None
        edits = wanted_edits(audience, o.audience_name if o.audience_id else None, o.description)
        if not edits:
            return audience
        self.report.edited = edits.fields()
        if o.dry_run:
            self.emit("would_edit", audience_id=audience.id, fields=edits.fields())
            return audience
        audience = rename(self.client, audience, edits)
        self.report.audience_name = audience.name
        self.emit("edited", audience_id=audience.id, fields=edits.fields())
        return audience

    def write(self, audience: Audience | None, last: SyncState | None = None) -> Audience | None:
        """Upload, then create the audience or replace its membership; wait if asked.

        None when a streamed upload found the set unchanged at its end (nothing written)."""
        uploaded = self.upload(audience, last)
        if uploaded is None:
            return audience
        upload_id, since = uploaded
        if audience is None:
            audience, since = self.create(upload_id), None  # any status is about it
        else:
            self.replace(audience)
        if self.options.wait:
            self.poll(audience, since)
        return audience

    def keep_lookalike(self, audience: Audience) -> None:
        """With ``lookalike``: the one LOOKALIKE audience seeded from this one, kept in state."""
        o = self.options
        if not o.lookalike or o.dry_run:
            return
        last = self.store.load(o.ad_account_id, audience.id)
        known = last.lookalike_id if last is not None else None
        try:
            lookalike, created = ensure_lookalike(self.client, audience, known)
        except SyncError as exc:  # the membership is written: this run's outcome stands
            self.emit(
                "warning", level="warning", code="lookalike_not_kept", audience_id=audience.id,
                message=f"the lookalike of audience {audience.id} was not kept: {exc}",
            )  # fmt: skip
            return
        self.report.lookalike_id = lookalike.id
        if last is not None and last.lookalike_id != lookalike.id:
            self.store.save(replace(last, lookalike_id=lookalike.id))
        self.emit("lookalike", audience_id=audience.id, lookalike_id=lookalike.id, created=created)

    def decide(self, audience: Audience | None, last: SyncState | None) -> bool:
        """Guards against the last sync, then skip or dry run: True when nothing is to upload.

        Before a streamed upload the counts are bounds (exact ones are checked at its end)."""
        o, report = self.options, self.report
        self._guard(last)
        unchanged = self._unchanged(audience, last)
        if unchanged and audience is not None and audience.size is not None:
            # The audience holds this very set: its current size gives today's match rate.
            report.size_min, report.size_max = audience.size.min, audience.size.max
        if o.dry_run:
            report.action = (
                "would skip"
                if unchanged
                else "would create"
                if audience is None
                else "would replace"
            )
            return True
        if unchanged:
            report.action = "skipped"
            self.emit("skipped", audience_id=report.audience_id, reason="unchanged since last sync")
        return unchanged

    def _unchanged(self, audience: Audience | None, last: SyncState | None) -> bool:
        """The audience holds this very set (same fingerprint), not EMPTY, and no --force."""
        return (
            audience is not None
            and last is not None
            and self.report.fingerprint is not None
            and last.fingerprint == self.report.fingerprint
            and audience.status != AudienceStatus.EMPTY
            and not self.options.force
        )

    def _approval(
        self, audience: Audience | None, last: SyncState | None
    ) -> Callable[[int], None] | None:
        """For a streamed upload: what must hold before the object is completed (counts are
        exact by then); None when the counts were exact before the upload started."""
        if self.report.fingerprint is not None:
            return None

        def approve(_total: int) -> None:
            self._counted()
            if last is not None:
                check_guards(self.prepared, last, self.options)
            if self._unchanged(audience, last):
                raise _Unchanged

        return approve

    def upload(
        self, audience: Audience | None, last: SyncState | None = None
    ) -> tuple[str, datetime | None] | None:
        """Upload the staged file: (upload id, the wall time a fresh status must not predate);
        None when a streamed upload found the set unchanged (its session cancelled)."""
        report = self.report
        upload_id, url = self._upload_url(audience)
        started, since = self.clock(), datetime.now(UTC) - FRESHNESS_SLACK
        approve = self._approval(audience, last)
        for attempt in (1, 2):
            self.emit(
                "upload",
                audience_id=audience.id if audience is not None else None,  # None: to be created
                upload_id=upload_id,
                bytes=report.bytes if report.fingerprint is not None else None,  # None: streamed
            )
            try:
                chunks = self.prepared.chunks(fingerprint=approve is not None)
                if approve is not None:
                    chunks = _within_limit(chunks)
                size = self.options.chunk_size
                total = report.bytes if approve is None else None
                outcome = self.uploader(
                    url, chunks, total_bytes=total, chunk_size=size, before_finalize=approve
                )
                break
            except _Unchanged:
                report.seconds["upload"] = self.clock() - started
                report.action = "skipped"
                if audience is not None and audience.size is not None:
                    report.size_min, report.size_max = audience.size.min, audience.size.max
                self.emit(
                    "skipped",
                    audience_id=report.audience_id,
                    reason="unchanged since last sync (found as the upload ended; the upload "
                    "was cancelled)",
                )
                return None
            except UploadSessionLostError:
                # The session expired or was dropped: nothing was completed from it, and the
                # staged file can be read again, so a new upload URL starts it over, once.
                if attempt == 2:
                    raise
                self.emit(
                    "session_restart",
                    level="warning",
                    upload_id=upload_id,
                    reason="the upload session was lost (HTTP 404/410); starting over",
                )
                upload_id, url = self._upload_url(audience)
        report.seconds["upload"] = self.clock() - started
        report.upload_requests = outcome.requests
        report.upload_resumes = outcome.resumes
        report.upload_bytes_resent = outcome.bytes_resent
        return upload_id, since

    def create(self, upload_id: str) -> Audience:
        """Create the audience from the upload, then settle a race with runs creating it too."""
        created = self._create_audience(upload_id)
        self._written("created", created)
        return self._settle_race(created)

    def replace(self, audience: Audience) -> None:
        """The upload went to the audience's replacement URL: it is replaced once processed."""
        self._written("replaced", audience)

    def poll(self, audience: Audience, since: datetime | None) -> None:
        """Wait for processing to settle; record the status it settled on."""
        report = self.report
        started = self.clock()
        latest, fresh = self._wait(audience.id, since)
        report.seconds["wait"] = self.clock() - started
        if latest is None:
            report.status = None  # uploaded, but the status could not be read
        elif fresh:
            report.status = _status(latest)
            if latest.size is not None:
                report.size_min, report.size_max = latest.size.min, latest.size.max
        if report.status != "PROCESSING":
            self.record(audience)

    def record(self, audience: Audience) -> None:
        """Save the state a next run compares with (fingerprint, counts) and finds by name."""
        if not self._owned:
            return  # a rival run's upload is in it: this run's fingerprint says nothing of it
        prepared, report = self.prepared, self.report
        state = SyncState(
            ad_account_id=self.options.ad_account_id,
            audience_id=audience.id,
            audience_name=audience.name,
            synced_at=utc_stamp(),
            identifiers=report.identifiers,
            counts={k: c.written for k, c in prepared.report.identifiers.items()},
            fingerprint=report.fingerprint or "",
            layout=prepared.layout,
            bytes=report.bytes,
            status=report.status,
            staged=prepared.staged_digest,
        )
        self.store.save(state)

    def finish(self) -> SyncReport:
        self.report.seconds["total"] = self.report.seconds["read"] + self.clock() - self._started
        return self.report

    # --- resolving ---------------------------------------------------------------------------
    def _by_id(self, audience_id: str) -> Audience:
        try:
            audience = self.client.get_audience(audience_id)
        except RemoteError as exc:
            if exc.status == 404:
                raise ConfigError(
                    f"--audience-id {audience_id}: no such audience in ad account "
                    f"{self.options.ad_account_id}"
                ) from exc
            raise
        _require_customer_list(audience)
        return audience

    def _by_name(self) -> Audience | None:
        name = self.options.audience_name
        assert name is not None
        listed = [
            a for a in self.client.list_audiences(q=name) if a.status != AudienceStatus.ARCHIVED
        ]
        for other in near_misses(name, listed):
            self.emit(
                "warning",
                level="warning",
                code="similar_audience_name",
                audience_id=other.id,
                message=f"audience {other.name!r} ({other.id}) is named like {name!r} "
                "but differs in case or surrounding spaces: it is not the audience synced; "
                f"pass --audience-id {other.id} to sync that one instead",
            )
        matches = _named(name, listed)
        for _ in range(RACE_RELISTS if len(matches) > 1 else 0):
            # Perhaps runs with separate state are settling a race of creates: their losers
            # delete their duplicates within seconds (see _settle_race). Look again before failing.
            self.sleep(2 * CREATE_SETTLE)
            matches = _named(name, self.client.list_audiences(q=name))
            if len(matches) <= 1:
                break
        if len(matches) > 1:
            ids = ", ".join(a.id for a in matches)
            raise SafetyError(
                f"{len(matches)} customer-list audiences are named {name!r} ({ids}); "
                "pass --audience-id to choose one"
            )
        return matches[0] if matches else self._remembered()

    def _remembered(self) -> Audience | None:
        """An audience this machine synced under the name, if the search does not show it yet.

        Search results can lag a fresh create; a rerun after a crash must not create twice.
        """
        o = self.options
        assert o.audience_name is not None
        for state in self.store.find_by_name(o.ad_account_id, o.audience_name):
            try:
                audience = self.client.get_audience(state.audience_id)
            except RemoteError as exc:
                if exc.status == 404:
                    continue  # deleted on Spotify since: create anew
                raise
            if audience.name == o.audience_name and audience.status != AudienceStatus.ARCHIVED:
                self.emit("found", audience_id=audience.id, how="state file")
                return audience
        return None

    # --- writing -----------------------------------------------------------------------------
    def _upload_url(self, audience: Audience | None) -> tuple[str, str]:
        """(id, signed URL). An orphaned URL creates nothing, so one retry is harmless."""
        for attempt in (1, 2):
            try:
                if audience is None:
                    url = self.client.new_upload_url()
                else:
                    url = self.client.replacement_upload_url(audience.id)
                return url.id, url.upload_url
            except TransientError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _create_audience(self, upload_id: str) -> Audience:
        """Create from the upload; after an ambiguous failure, look before trying again."""
        o = self.options
        assert o.audience_name is not None
        try:
            return self.client.create_audience(o.audience_name, o.description, upload_id)
        except TransientError:
            self.emit("reconcile", audience_id=upload_id)
            try:
                return self.client.get_audience(upload_id)  # it was created after all
            except RemoteError as exc:
                if exc.status != 404:
                    raise
            return self.client.create_audience(o.audience_name, o.description, upload_id)

    def _written(self, action: Action, audience: Audience) -> None:
        report = self.report
        report.action = action
        report.audience_id, report.audience_name = audience.id, audience.name
        report.status = "PROCESSING"
        self.emit(action, audience_id=audience.id)
        # Remember at once: if anything after this fails, a rerun must not upload again.
        self.record(audience)

    # --- a race of creates -------------------------------------------------------------------
    def _settle_race(self, created: Audience) -> Audience:
        """The one audience the name keeps when runs that share no lock created it at once.

        Runs with separate state (two directories, two machines) can all find no audience and
        all create one. After a create the run lists the name; the first created (``created_at``,
        then the smallest id) wins everywhere. A later creator's listing shows the winner, and
        ties within a second are seen after :data:`CREATE_SETTLE`, so exactly one remains.
        A loser deletes only the audience it created seconds before, never one it did not
        create, and reports the winner's id; it does not upload again: racers of one name
        are one schedule run twice and carry the same segment, so the winner already holds it
        (a second upload would spend quota to replace a set with itself). It saves no state
        for the winner, as its fingerprint describes another run's upload: its next run
        replaces the winner instead of skipping, which is correct whatever the winner holds.
        """
        name = self.options.audience_name
        assert name is not None
        self.sleep(CREATE_SETTLE)
        try:
            rivals = _named(name, self.client.list_audiences(q=name))
        except (TransientError, RemoteError) as exc:  # uploaded and created: no reason to fail
            self.emit("race_unchecked", level="warning", reason=type(exc).__name__)
            return created
        winner = min({a.id: a for a in [created, *rivals]}.values(), key=_creation_order)
        if winner.id == created.id:
            return created
        self._delete_created(created.id)
        self._owned = False
        self.report.audience_id, self.report.status = winner.id, _status(winner)
        self.emit(
            "warning",
            level="warning",
            code="duplicate_audience_deleted",
            audience_id=winner.id,
            deleted_id=created.id,
            message=f"another run created audience {name!r} at the same time ({winner.id}): "
            f"the duplicate this run created ({created.id}) was deleted",
        )
        return winner

    def _delete_created(self, audience_id: str) -> None:
        """Delete the audience this run created; a retry after an unknown outcome may see 404."""
        for attempt in (1, 2):
            try:
                self.client.delete_audience(audience_id)
                return
            except TransientError:
                if attempt == 2:
                    raise
            except RemoteError as exc:
                if exc.status == 404 and attempt == 2:
                    return  # the first attempt deleted it after all
                raise

    # --- waiting -----------------------------------------------------------------------------
    def _wait(self, audience_id: str, since: datetime | None) -> tuple[Audience | None, bool]:
        """Poll with backoff until processing settles or the wait timeout passes.

        Returns the last audience read and whether its status is about *this* upload. After a
        replacement the first reads may still show the previous file's BOOKABLE and size: a
        settled status counts only once PROCESSING was seen or ``updated_at`` is not older
        than the upload (``since``). A failure to read the status after a successful upload is
        reported, not raised: the upload happened, and a retry would upload again.
        """
        deadline = self.clock() + self.options.wait_timeout
        interval = self.options.poll_interval
        fresh = since is None
        audience: Audience | None = None
        while True:
            try:
                audience = self.client.get_audience(audience_id)
            except (TransientError, RemoteError) as exc:
                self.emit("status_unknown", level="warning", reason=type(exc).__name__)
                return audience, False
            self.emit("status", audience_id=audience_id, status=_status(audience))
            if audience.status == AudienceStatus.PROCESSING:
                fresh = True
            elif since is not None and audience.updated_at is not None:
                fresh = fresh or audience.updated_at >= since
            done = audience.settled or audience.status == AudienceStatus.ARCHIVED
            if (done and fresh) or self.clock() + interval > deadline:
                return audience, fresh
            self.sleep(interval)
            interval = min(interval * 2, self.options.max_poll_interval)


def _within_limit(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A streamed file, refused (SafetyError, the session cancelled) as soon as it passes
    Spotify's size limit, rather than after a gigabyte more has been sent."""
    from spotify_audience_sync.sync import guards

    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > guards.MAX_BYTES:
            raise SafetyError(
                f"the file would be over {guards.MAX_BYTES:,} bytes; Spotify accepts at most "
                "1 GiB (the upload was cancelled; nothing was created or replaced)"
            )
        yield chunk


def _named(name: str, listed: Iterable[Audience]) -> list[Audience]:
    """The customer-list audiences called exactly ``name`` (archived ones are gone for good)."""
    return [
        a
        for a in listed
        if a.name == name
        and a.type == "CUSTOM"
        and a.subtype == "CUSTOMER_LIST"
        and a.status != AudienceStatus.ARCHIVED
    ]


def _creation_order(audience: Audience) -> tuple[bool, datetime, str]:
    created = audience.created_at or datetime.max.replace(tzinfo=UTC)
    return audience.created_at is None, created, audience.id


def _status(audience: Audience | None) -> str | None:
    return None if audience is None or audience.status is None else str(audience.status)


def validate_options(options: SyncOptions) -> None:
    """Check what Spotify would refuse only after the upload: before any input is read."""
    check_name(options.audience_name)
    if not options.audience_name and not options.audience_id:
        raise UsageError(
            "name the audience with --audience-name or --audience-id (both: the audience of "
            "that id, renamed to that name)"
        )
    if options.description is not None and len(options.description) > 80:
        raise UsageError("--description must be at most 80 characters")


def _require_customer_list(audience: Audience) -> None:
    if audience.type != "CUSTOM" or audience.subtype != "CUSTOMER_LIST":
        raise ConfigError(
            f"audience {audience.id} is {audience.type}/{audience.subtype}, not a "
            "CUSTOM/CUSTOMER_LIST audience: it cannot be replaced from a file"
        )


def mirror(
    prepared: PreparedSegment,
    client: AdsClient,
    options: SyncOptions,
    *,
    uploader: Uploader | None = None,
    store: StateBackend | None = None,
    events: EventSink | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SyncReport:
    """Run one Mirror sync (see :class:`Mirror`); a SyncError carries the report as ``report``."""
    run = Mirror(
        prepared,
        client,
        options,
        uploader=uploader,
        store=store,
        events=events,
        sleep=sleep,
        clock=clock,
    )
    return run.run()
