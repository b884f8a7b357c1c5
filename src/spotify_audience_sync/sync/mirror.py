"""Mirror sync: make one customer-list audience hold exactly the prepared segment.

The only module that knows the whole sequence::

    finalize (exact counts, size, fingerprint)   ← nothing sent yet
    guards: empty / < 1,000 / > 1 GiB / shrink   ← refuse before any write
    lock the audience; resolve it (id, or exact name; never two with one name)
    skip if the set is unchanged (fingerprint) and the audience is not EMPTY
    upload URL (new, or replacement) → resumable upload → create (new only)
    poll until BOOKABLE / LIVE / EMPTY or the wait timeout; save state

Why the guards can run before the upload: the pipeline stages hashes (never raw values) in 0600
files and deduplicates them before the first byte is produced, so counts, size and fingerprint
are exact up front. The alternative, holding back the last chunk and cancelling the session,
would spend the upload (and Spotify's quota) just to refuse it; staging costs a re-read of the
hashed partitions (measured in benchmarks/bench_sync.py), which is cheaper than an upload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from spotify_audience_sync.errors import (
    ConfigError,
    RemoteError,
    SafetyError,
    SyncError,
    TransientError,
    UploadSessionLostError,
    UsageError,
)
from spotify_audience_sync.segment.quality import DEFAULT_MAX_REJECT_RATE, column_problems
from spotify_audience_sync.spotify.models import Audience, AudienceStatus
from spotify_audience_sync.sync.names import check_name, clean_name, near_misses
from spotify_audience_sync.sync.state import StateStore, SyncState
from spotify_audience_sync.timefmt import utc_stamp

if TYPE_CHECKING:
    from spotify_audience_sync.segment.pipeline import PreparedSegment
    from spotify_audience_sync.spotify.client import AdsClient
    from spotify_audience_sync.sync.backend import StateBackend

__all__ = [
    "MAX_BYTES",
    "MIN_IDENTIFIERS",
    "Mirror",
    "SyncOptions",
    "SyncReport",
    "Uploader",
    "mirror",
    "validate_options",
]

log = logging.getLogger(__name__)

MIN_IDENTIFIERS = 1_000
MAX_BYTES = 1 << 30
SHRINK_FLOOR = 0.5
#: A type is guarded against shrinking on its own once it had at least this many identifiers.
MIN_TYPE_FOR_SHRINK = 1_000
# A settled status read after a replacement belongs to it only if updated since the upload
# began; the slack absorbs clock differences between this machine and Spotify.
FRESHNESS_SLACK = timedelta(seconds=60)

Action = Literal["created", "replaced", "skipped", "would create", "would replace", "would skip"]
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
        self, upload_url: str, chunks: Any, *, total_bytes: int | None, chunk_size: int
    ) -> UploadOutcome: ...


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
    poll_interval: float = 2.0
    max_poll_interval: float = 60.0

    def __post_init__(self) -> None:  # "NU 200k " means "NU 200k": see sync/names.py
        object.__setattr__(self, "audience_name", clean_name(self.audience_name))


@dataclass
class SyncReport:
    """What a sync did: for the JSON report and the summary. Counts and ids only."""

    ad_account_id: str
    audience_id: str | None = None
    audience_name: str | None = None
    action: Action | None = None
    identifiers: int = 0
    #: Input rows with at least one accepted identifier: the per-person match rate's base.
    rows_with_identifier: int = 0
    bytes: int = 0
    fingerprint: str | None = None
    upload_requests: int = 0
    upload_resumes: int = 0
    upload_bytes_resent: int = 0
    status: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def match_rate(self) -> tuple[float, float] | None:
        """Per identifier: Spotify's matched-size range over the distinct identifiers uploaded.

        Lower for a file with several identifiers per person (a person matched by email and
        phone is one member): compare it only between runs of one layout and set of columns.
        """
        return self._rate(self.identifiers)

    @property
    def match_rate_per_person(self) -> tuple[float, float] | None:
        """Per person: the matched-size range over the input rows with an accepted identifier."""
        return self._rate(self.rows_with_identifier)

    def _rate(self, base: int) -> tuple[float, float] | None:
        if self.size_min is None or self.size_max is None or not base:
            return None
        return self.size_min / base, self.size_max / base

    def to_dict(self) -> dict[str, Any]:
        def shown(rate: tuple[float, float] | None) -> dict[str, float] | None:
            return None if rate is None else {"min": round(rate[0], 4), "max": round(rate[1], 4)}

        rates = {"per_person": self.match_rate_per_person, "per_identifier": self.match_rate}
        return {
            "ad_account_id": self.ad_account_id,
            "audience_id": self.audience_id,
            "audience_name": self.audience_name,
            "action": self.action,
            "identifiers": self.identifiers,
            "rows_with_identifier": self.rows_with_identifier,
            "bytes": self.bytes,
            "fingerprint": self.fingerprint,
            "upload": {
                "requests": self.upload_requests,
                "resumes": self.upload_resumes,
                "bytes_resent": self.upload_bytes_resent,
            },
            "status": self.status,
            "size": {"min": self.size_min, "max": self.size_max},
            "match_rate": {name: shown(rate) for name, rate in rates.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _now() -> str:
    return utc_stamp()


def _identifier_count(prepared: PreparedSegment) -> int:
    return sum(c.written for c in prepared.report.identifiers.values())


def check_guards(prepared: PreparedSegment, last: SyncState | None, options: SyncOptions) -> None:
    """Refuse what Spotify would ignore or what would wipe an audience by mistake."""
    identifiers = _identifier_count(prepared)
    size = prepared.report.bytes_written
    if identifiers == 0:
        raise SafetyError("the segment has no valid identifier: refusing to empty the audience")
    if identifiers < MIN_IDENTIFIERS:
        raise SafetyError(
            f"only {identifiers:,} identifiers; Spotify does not update an audience from fewer "
            f"than {MIN_IDENTIFIERS:,}"
        )
    if size > MAX_BYTES:
        raise SafetyError(f"the file would be {size:,} bytes; Spotify accepts at most 1 GiB")
    problems = column_problems(prepared.report, options.max_reject_rate)
    if problems:
        raise SafetyError(
            "refusing to sync: "
            + "; ".join(problem.message() for problem in problems)
            + f" (--max-reject-rate {options.max_reject_rate:g} sets the threshold)"
        )
    if last is None or options.allow_shrink:
        return
    if identifiers < SHRINK_FLOOR * last.identifiers:
        raise SafetyError(
            f"{identifiers:,} identifiers is under half of the last sync's "
            f"{last.identifiers:,} ({last.synced_at}); pass --allow-shrink if that is intended"
        )
    # Per type too: 1,200 emails replacing 1,000 emails and 1,333 phones keeps the total above
    # half, yet strips every phone from the audience.
    now = {key: counts.written for key, counts in prepared.report.identifiers.items()}
    for key, before in sorted(last.counts.items()):
        after = now.get(key, 0)
        if before >= MIN_TYPE_FOR_SHRINK and after < SHRINK_FLOOR * before:
            raise SafetyError(
                f"{key}: {after:,} identifiers is under half of the last sync's {before:,} "
                f"({last.synced_at}); pass --allow-shrink if that is intended"
            )


class _Mirror:
    def __init__(
        self,
        client: AdsClient,
        uploader: Uploader,
        store: StateBackend,
        options: SyncOptions,
        events: EventSink | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.client, self.uploader, self.store, self.options = client, uploader, store, options
        self.events, self.sleep, self.clock = events, sleep, clock

    def emit(self, event: str, *, level: str = "info", **fields: Any) -> None:
        log.log(logging.WARNING if level == "warning" else logging.INFO, "%s %s", event, fields)
        if self.events is not None:
            self.events(event, {"level": level, **fields} if level != "info" else fields)

    # --- resolving ---------------------------------------------------------------------------
    def resolve(self) -> Audience | None:
        """The audience to replace, or None when one must be created."""
        o = self.options
        if o.audience_id:
            try:
                audience = self.client.get_audience(o.audience_id)
            except RemoteError as exc:
                if exc.status == 404:
                    raise ConfigError(
                        f"--audience-id {o.audience_id}: no such audience in ad account "
                        f"{o.ad_account_id}"
                    ) from exc
                raise
            _require_customer_list(audience)
            return audience
        assert o.audience_name is not None
        listed = [
            a
            for a in self.client.list_audiences(q=o.audience_name)
            if a.status != AudienceStatus.ARCHIVED
        ]
        for other in near_misses(o.audience_name, listed):
            self.emit(
                "warning",
                level="warning",
                code="similar_audience_name",
                audience_id=other.id,
                message=f"audience {other.name!r} ({other.id}) is named like {o.audience_name!r} "
                "but differs in case or surrounding spaces: it is not the audience synced; "
                f"pass --audience-id {other.id} to sync that one instead",
            )
        matches = [
            a
            for a in listed
            if a.name == o.audience_name and a.type == "CUSTOM" and a.subtype == "CUSTOMER_LIST"
        ]
        if len(matches) > 1:
            ids = ", ".join(a.id for a in matches)
            raise SafetyError(
                f"{len(matches)} customer-list audiences are named {o.audience_name!r} ({ids}); "
                "pass --audience-id to choose one"
            )
        if matches:
            return matches[0]
        return self.remembered()

    def remembered(self) -> Audience | None:
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
    def create(self, upload_id: str) -> Audience:
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

    def upload_url(self, audience: Audience | None) -> tuple[str, str]:
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

    def wait(self, audience_id: str, since: datetime | None) -> tuple[Audience | None, bool]:
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


def _status(audience: Audience | None) -> str | None:
    return None if audience is None or audience.status is None else str(audience.status)


def validate_options(options: SyncOptions) -> None:
    """Check what Spotify would refuse only after the upload: before any input is read."""
    check_name(options.audience_name)
    if bool(options.audience_name) == bool(options.audience_id):
        raise UsageError("name the audience with exactly one of --audience-name or --audience-id")
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
    report: SyncReport | None = None,
) -> SyncReport:
    """Run one Mirror sync of ``prepared`` to the audience ``options`` names.

    ``report`` may be passed in so a caller still has what was done if a step raises.
    """
    validate_options(options)
    if uploader is None:
        from spotify_audience_sync.spotify.upload import upload_file

        uploader = upload_file
    store = store or StateStore()
    run = _Mirror(client, uploader, store, options, events, sleep, clock)
    report = report or SyncReport(ad_account_id=options.ad_account_id)
    report.audience_name = options.audience_name
    started = clock()
    report.seconds["read"] = prepared.report.seconds
    prepared.finalize()
    report.seconds["dedup"] = clock() - started
    report.identifiers = _identifier_count(prepared)
    report.rows_with_identifier = prepared.report.rows_with_identifier
    report.bytes = prepared.report.bytes_written
    report.fingerprint = prepared.report.fingerprint
    run.emit("prepared", identifiers=report.identifiers, bytes=report.bytes)
    check_guards(prepared, None, options)

    def finish() -> SyncReport:
        report.seconds["total"] = report.seconds["read"] + clock() - started
        return report

    def remember(audience: Audience, status: str | None) -> None:
        store.save(
            SyncState(
                ad_account_id=options.ad_account_id,
                audience_id=audience.id,
                audience_name=audience.name,
                synced_at=_now(),
                identifiers=report.identifiers,
                counts={k: c.written for k, c in prepared.report.identifiers.items()},
                fingerprint=report.fingerprint or "",
                layout=prepared.layout,
                bytes=report.bytes,
                status=status,
            )
        )

    with ExitStack() as locks:
        # One run per audience: locked by what the user named, then also by the audience's id,
        # so a run by name and a run by id of the same audience cannot overlap either.
        reference = options.audience_id or options.audience_name or ""
        locks.enter_context(store.lock(options.ad_account_id, reference))
        audience = run.resolve()
        if audience is not None and audience.id != reference:
            locks.enter_context(store.lock(options.ad_account_id, audience.id))
        last = store.load(options.ad_account_id, audience.id) if audience else None
        check_guards(prepared, last, options)
        if audience is not None:
            report.audience_id, report.audience_name = audience.id, audience.name
            report.status = _status(audience)
        unchanged = (
            audience is not None
            and last is not None
            and last.fingerprint == report.fingerprint
            and audience.status != AudienceStatus.EMPTY
            and not options.force
        )
        if unchanged and audience is not None and audience.size is not None:
            # The audience holds this very set: its current size gives today's match rate.
            report.size_min, report.size_max = audience.size.min, audience.size.max
        if options.dry_run:
            if unchanged:
                report.action = "would skip"
            else:
                report.action = "would create" if audience is None else "would replace"
            return finish()
        if unchanged:
            report.action = "skipped"
            run.emit("skipped", audience_id=report.audience_id, reason="unchanged since last sync")
            return finish()

        upload_id, url = run.upload_url(audience)
        upload_started, upload_wall = clock(), datetime.now(UTC) - FRESHNESS_SLACK
        for attempt in (1, 2):
            run.emit(
                "upload",
                audience_id=audience.id if audience is not None else None,  # None: to be created
                upload_id=upload_id,
                bytes=report.bytes,
            )
            try:
                outcome = run.uploader(
                    url, prepared.chunks(), total_bytes=report.bytes, chunk_size=options.chunk_size
                )
                break
            except UploadSessionLostError:
                # The session expired or was dropped: nothing was completed from it, and the
                # staged file can be read again, so a new upload URL starts it over, once.
                if attempt == 2:
                    raise
                run.emit(
                    "session_restart",
                    level="warning",
                    upload_id=upload_id,
                    reason="the upload session was lost (HTTP 404/410); starting over",
                )
                upload_id, url = run.upload_url(audience)
        report.seconds["upload"] = clock() - upload_started
        report.upload_requests = outcome.requests
        report.upload_resumes = outcome.resumes
        report.upload_bytes_resent = outcome.bytes_resent
        replaced = audience is not None
        if audience is None:
            audience = run.create(upload_id)
            report.action = "created"
        else:
            report.action = "replaced"
        report.audience_id, report.audience_name = audience.id, audience.name
        report.status = "PROCESSING"
        run.emit(report.action, audience_id=audience.id)
        # Remember at once: if anything after this fails, a rerun must not upload again.
        remember(audience, report.status)

        if options.wait:
            wait_started = clock()
            latest, fresh = run.wait(audience.id, upload_wall if replaced else None)
            report.seconds["wait"] = clock() - wait_started
            if latest is None:
                report.status = None  # uploaded, but the status could not be read
            elif fresh:
                report.status = _status(latest)
                if latest.size is not None:
                    report.size_min, report.size_max = latest.size.min, latest.size.max
            if report.status != "PROCESSING":
                remember(audience, report.status)
    return finish()


class Mirror:
    """One Mirror sync as an object whose :attr:`report` outlives a failure.

    Interim shim over :func:`mirror` (the refactor into named steps replaces it): a SyncError
    from :meth:`run` carries the partial report as ``exc.report``.
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
        self.report = SyncReport(ad_account_id=options.ad_account_id)
        self._prepared, self._client, self._options = prepared, client, options
        self._uploader, self._store, self._events = uploader, store, events
        self._sleep, self._clock = sleep, clock

    def run(self) -> SyncReport:
        try:
            return mirror(
                self._prepared,
                self._client,
                self._options,
                uploader=self._uploader,
                store=self._store,
                events=self._events,
                sleep=self._sleep,
                clock=self._clock,
                report=self.report,
            )
        except SyncError as exc:
            exc.report = self.report  # type: ignore[attr-defined]
            raise
