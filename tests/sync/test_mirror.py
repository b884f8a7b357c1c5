"""Mirror sync end to end against the sandbox: create, replace, skip, guards, faults, recovery."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import spotify_audience_sync.sync.guards as guards
import spotify_audience_sync.sync.mirror as mirror_module
from spotify_audience_sync.errors import ConfigError, RemoteError, SafetyError, TransientError
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.sandbox.config import FaultRule
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.spotify.auth import OAuthSession, TokenStore
from spotify_audience_sync.spotify.client import AdsClient, StaticToken
from spotify_audience_sync.spotify.upload import upload_file
from spotify_audience_sync.sync.mirror import Mirror, SyncOptions, SyncReport, mirror
from spotify_audience_sync.sync.state import StateStore

NAME = "loyal customers"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def write_segment(path: Path, people: range) -> Path:
    """A segment of made-up people: a messy email and a US phone each."""
    lines = ["Email,phone"]
    lines += [f"  User{i}@Example.com ,+1 201 555 {i % 10_000:04d}" for i in people]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected(people: range) -> set[tuple[str, str]]:
    rows = {("EMAIL_ID_SHA256", sha(f"user{i}@example.com")) for i in people}
    rows |= {("PHONE_NUMBER_SHA256", sha(f"+1201555{i % 10_000:04d}")) for i in people}
    return rows


@pytest.fixture(autouse=True)
def _no_create_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread at a time needs no pause after a create (the race tests pace themselves)."""
    monkeypatch.setattr(mirror_module, "CREATE_SETTLE", 0.0)


@pytest.fixture(autouse=True, params=["counted", "streamed"])
def _mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: segments this small are counted before the upload; streamed, the
    upload runs from the deduplicating pass and the guards run where it would complete (the
    promises are the same: tests/sync/test_mirror_stream.py attacks the difference)."""
    if request.param == "streamed":
        monkeypatch.setattr(mirror_module, "STREAM_FROM", 0)


def new_client(sandbox: Sandbox) -> AdsClient:
    token = str(sandbox.mint_tokens()["access_token"])
    return AdsClient(
        base_url=sandbox.api_base_url,
        ad_account_id=sandbox.ad_account_id,
        tokens=StaticToken(token),
        sleep=lambda _s: None,
    )


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[AdsClient]:
    token = str(sandbox.mint_tokens()["access_token"])
    with AdsClient(
        base_url=sandbox.api_base_url,
        ad_account_id=sandbox.ad_account_id,
        tokens=StaticToken(token),
        sleep=lambda _s: None,
    ) as ads:
        yield ads


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


@pytest.fixture
def sync(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> Callable[..., Any]:
    def run(
        people: range, *, uploader: Any = upload_file, events: Any = None, **options: Any
    ) -> Any:
        path = write_segment(tmp_path / f"seg-{people.start}-{people.stop}.csv", people)
        opts = SyncOptions(
            ad_account_id=sandbox.ad_account_id,
            audience_name=options.pop("audience_name", NAME)
            if "audience_id" not in options
            else None,
            poll_interval=0.02,
            wait_timeout=10,
            chunk_size=256 * 1024,
            **options,
        )
        with (
            open_source(str(path)) as source,
            prepare_segment(source, PrepareOptions()) as prepared,
        ):
            return mirror(prepared, client, opts, uploader=uploader, store=store, events=events)

    return run


def audiences(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.audiences.list(sandbox.ad_account_id, {})["audiences"]  # type: ignore[no-any-return]


def test_create_then_replace_then_skip(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    first = sync(range(1500))
    assert first.action == "created"
    assert first.status == "BOOKABLE"
    assert set(sandbox.membership(first.audience_id)) == expected(range(1500))
    assert first.size_min is not None
    assert first.match_rate is not None

    second = sync(range(500, 2500))
    assert second.action == "replaced"
    assert second.audience_id == first.audience_id
    assert set(sandbox.membership(first.audience_id)) == expected(range(500, 2500))

    third = sync(range(500, 2500))
    assert third.action == "skipped"
    assert len(audiences(sandbox)) == 1


def test_force_uploads_an_unchanged_set(sync: Callable[..., Any]) -> None:
    sync(range(1200))
    assert sync(range(1200), force=True).action == "replaced"


def test_dry_run_writes_nothing(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    report = sync(range(1200), dry_run=True)
    assert report.action == "would create"
    assert report.identifiers == 2400
    assert audiences(sandbox) == []


def test_no_wait_returns_while_processing(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    sandbox.config.processing_delay = 5
    report = sync(range(1200), wait=False)
    assert report.action == "created"
    assert report.status == "PROCESSING"


def test_too_few_identifiers_are_refused_before_anything_is_sent(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    with pytest.raises(SafetyError, match="only 800 identifiers"):
        sync(range(400))
    assert audiences(sandbox) == []


def test_a_segment_with_no_valid_identifier_is_refused(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    path = tmp_path / "junk.csv"
    path.write_text("Email\nnot-an-email\nalso@bad\n", encoding="utf-8")
    options = SyncOptions(ad_account_id=sandbox.ad_account_id, audience_name=NAME)
    with (
        open_source(str(path)) as source,
        prepare_segment(source) as prepared,
        pytest.raises(SafetyError, match="no valid identifier"),
    ):
        mirror(prepared, client, options, uploader=upload_file, store=store)
    assert audiences(sandbox) == []


def test_a_file_over_the_size_limit_is_refused(
    sync: Callable[..., Any], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guards, "MAX_BYTES", 10_000)
    with pytest.raises(SafetyError, match="at most 1 GiB"):
        sync(range(1200))
    assert audiences(sandbox) == []


def test_shrinking_by_more_than_half_needs_allow_shrink(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    first = sync(range(3000))
    with pytest.raises(SafetyError, match="under half of the last sync"):
        sync(range(1000))
    assert set(sandbox.membership(first.audience_id)) == expected(range(3000))
    assert sync(range(1000), allow_shrink=True).action == "replaced"


def test_two_audiences_with_the_name_are_refused(
    sync: Callable[..., Any], client: AdsClient, sandbox: Sandbox
) -> None:
    for _ in range(2):
        upload = client.new_upload_url()
        from conftest import gcs_upload  # the plain protocol, without our uploader

        gcs_upload(upload.upload_url, b"type,value\n" + b"EMAIL_ID_SHA256," + b"a" * 64 + b"\n")
        client.create_audience(NAME, None, upload.id)
    with pytest.raises(SafetyError, match="2 customer-list audiences are named"):
        sync(range(1200))


def test_unknown_audience_id_is_a_config_error(sync: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="no such audience"):
        sync(range(1200), audience_id="00000000-0000-4000-8000-000000000999")


def test_replace_by_id(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    first = sync(range(1200))
    second = sync(range(100, 1300), audience_id=first.audience_id)
    assert second.action == "replaced"
    assert set(sandbox.membership(first.audience_id)) == expected(range(100, 1300))


def test_crash_between_upload_and_create_then_rerun_creates_one_audience(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    def upload_then_crash(*args: Any, **kwargs: Any) -> Any:
        upload_file(*args, **kwargs)
        raise KeyboardInterrupt  # the process dies before `create`

    with pytest.raises(KeyboardInterrupt):
        sync(range(1200), uploader=upload_then_crash)
    assert audiences(sandbox) == []
    assert sync(range(1200)).action == "created"
    assert len(audiences(sandbox)) == 1


def test_ambiguous_create_is_reconciled_not_repeated(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.add_faults(FaultRule(route="createAudience", drop=True, when="after"))
    report = sync(range(1200))
    assert report.action == "created"
    assert len(audiences(sandbox)) == 1
    assert set(sandbox.membership(report.audience_id)) == expected(range(1200))


def test_ambiguous_create_that_did_not_happen_is_made_once(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.add_faults(FaultRule(route="createAudience", status=503))
    assert sync(range(1200)).action == "created"
    assert len(audiences(sandbox)) == 1


def test_429_storm_is_survived(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    sandbox.add_faults(FaultRule(route="*", status=429, count=4, retry_after=0))
    assert sync(range(1200)).action == "created"


def test_empty_processing_is_reported(
    sync: Callable[..., Any], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guards, "MIN_IDENTIFIERS", 10)
    report = sync(range(100))  # 200 identifiers: the sandbox, like Spotify, leaves it EMPTY
    assert report.status == "EMPTY"
    again = sync(range(100))
    assert again.action == "replaced", "an EMPTY audience is never skipped"


def test_a_second_run_of_the_same_audience_is_refused_while_one_runs(
    sync: Callable[..., Any], store: StateStore, sandbox: Sandbox
) -> None:
    with store.lock(sandbox.ad_account_id, NAME), pytest.raises(SafetyError, match="another sync"):
        sync(range(1200))
    assert audiences(sandbox) == []


@pytest.fixture
def session(tmp_path: Path, sandbox: Sandbox) -> Iterator[OAuthSession]:
    """A real OAuth session against the sandbox's token endpoint (refreshes for real)."""
    oauth = OAuthSession(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        token_url=sandbox.token_url,
        store=TokenStore(tmp_path / "tokens.json"),
        refresh_token=str(sandbox.mint_tokens()["refresh_token"]),
    )
    yield oauth
    oauth.close()


def sync_with_session(
    sandbox: Sandbox, session: OAuthSession, path: Path, store: StateStore, uploader: Any
) -> Any:
    """A sync whose client refreshes tokens for real (unlike the StaticToken fixture)."""
    with (
        AdsClient(
            base_url=sandbox.api_base_url, ad_account_id=sandbox.ad_account_id, tokens=session
        ) as ads,
        open_source(str(path)) as source,
        prepare_segment(source) as prepared,
    ):
        options = SyncOptions(
            ad_account_id=sandbox.ad_account_id, audience_name=NAME, poll_interval=0.02
        )
        return mirror(prepared, ads, options, uploader=uploader, store=store)


def test_expired_token_mid_sequence_is_refreshed(
    tmp_path: Path, sandbox: Sandbox, store: StateStore, session: OAuthSession
) -> None:
    path = write_segment(tmp_path / "seg.csv", range(1200))
    expired = {"n": 0}

    def expire_then_upload(*args: Any, **kwargs: Any) -> Any:
        sandbox.accounts.expire_access_tokens()  # the create call that follows must refresh
        expired["n"] += 1
        return upload_file(*args, **kwargs)

    report = sync_with_session(sandbox, session, path, store, expire_then_upload)
    assert expired["n"] == 1
    assert report.status == "BOOKABLE"


def test_state_records_counts_and_fingerprint_not_identifiers(
    sync: Callable[..., Any], store: StateStore, sandbox: Sandbox
) -> None:
    report = sync(range(1200))
    state = store.path(sandbox.ad_account_id, report.audience_id).read_text()
    assert report.fingerprint in state
    assert "@" not in state
    assert sha("user1@example.com") not in state


def test_transient_failures_surface_as_transient_errors(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.add_faults(FaultRule(route="createUploadUrl", status=503, count=3))
    with pytest.raises(TransientError):
        sync(range(1200))
    assert audiences(sandbox) == []


def test_token_refused_at_the_upload_url_call_is_refreshed_once(
    tmp_path: Path, sandbox: Sandbox, store: StateStore, session: OAuthSession
) -> None:
    session.access_token()  # holds a token the sandbox is about to forget
    path = write_segment(tmp_path / "seg.csv", range(1200))
    sandbox.add_faults(FaultRule(route="createUploadUrl", status=401))
    report = sync_with_session(sandbox, session, path, store, upload_file)
    assert report.action == "created"
    assert set(sandbox.membership(report.audience_id)) == expected(range(1200))


def test_dry_run_says_when_it_would_skip(sync: Callable[..., Any]) -> None:
    sync(range(1200))
    assert sync(range(1200), dry_run=True).action == "would skip"
    assert sync(range(1300), dry_run=True).action == "would replace"


def test_dry_run_asks_for_no_upload_url(
    sync: Callable[..., Any], client: AdsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*_args: Any) -> Any:
        raise AssertionError("a dry run asked for an upload URL")

    monkeypatch.setattr(client, "new_upload_url", forbidden)
    monkeypatch.setattr(client, "replacement_upload_url", forbidden)
    assert sync(range(1200), dry_run=True).action == "would create"


def test_names_spotify_would_refuse_fail_before_the_upload(sync: Callable[..., Any]) -> None:
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("upload")
        return upload_file(*args, **kwargs)

    with pytest.raises(ConfigError, match="--description must be at most 80"):
        sync(range(1200), description="d" * 81, uploader=counting)
    assert calls == []


def test_a_run_by_id_waits_for_a_run_by_name_of_the_same_audience(
    sync: Callable[..., Any], store: StateStore, sandbox: Sandbox
) -> None:
    first = sync(range(1200))
    with (
        store.lock(sandbox.ad_account_id, first.audience_id),
        pytest.raises(SafetyError, match="another sync"),
    ):
        sync(range(1300))  # by name: resolves to the same audience, whose id is locked


def test_archived_namesakes_are_not_replaced(sync: Callable[..., Any], sandbox: Sandbox) -> None:
    first = sync(range(1200))
    sandbox.audiences.force_status(first.audience_id, "ARCHIVED")
    second = sync(range(1200))
    assert second.action == "created"
    assert second.audience_id != first.audience_id


def test_a_lagging_name_search_does_not_create_a_duplicate(
    sync: Callable[..., Any], client: AdsClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sync(range(1200))
    monkeypatch.setattr(client, "list_audiences", lambda **_kw: iter(()))
    second = sync(range(1300))
    assert second.action == "replaced"
    assert second.audience_id == first.audience_id
    assert len(audiences(sandbox)) == 1


def test_a_status_read_failure_after_upload_is_not_retried_and_is_remembered(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.add_faults(FaultRule(route="getAudience", status=503, count=10))
    report = sync(range(1200))
    assert report.action == "created"
    assert report.status is None  # uploaded; status unknown
    sandbox.faults.clear()
    assert sync(range(1200)).action == "skipped", "the upload was remembered: no second upload"


class _StaleClient:
    """Reads the previous file's BOOKABLE once after a replacement, then the real story."""

    def __init__(self, inner: AdsClient, sandbox: Sandbox) -> None:
        self.inner, self.sandbox, self.reads = inner, sandbox, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_audience(self, audience_id: str) -> Any:
        audience = self.inner.get_audience(audience_id)
        self.reads += 1
        if self.reads == 1:  # the first poll after the replacement upload
            from datetime import UTC, datetime, timedelta

            return audience.model_copy(
                update={
                    "status": "BOOKABLE",
                    "updated_at": datetime.now(UTC) - timedelta(hours=1),
                }
            )
        return audience


def test_a_stale_bookable_right_after_a_replacement_is_not_taken_as_done(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    options = SyncOptions(
        ad_account_id=sandbox.ad_account_id, audience_name=NAME, poll_interval=0.02, wait_timeout=10
    )
    path = write_segment(tmp_path / "a.csv", range(1200))
    with open_source(str(path)) as source, prepare_segment(source) as prepared:
        first = mirror(prepared, client, options, uploader=upload_file, store=store)
    sandbox.config.processing_delay = 0.3
    stale = _StaleClient(client, sandbox)
    path = write_segment(tmp_path / "b.csv", range(1500))
    with open_source(str(path)) as source, prepare_segment(source) as prepared:
        second = mirror(prepared, stale, options, uploader=upload_file, store=store)  # type: ignore[arg-type]
    assert second.audience_id == first.audience_id
    assert second.status == "BOOKABLE"
    assert stale.reads > 2, "it kept polling past the stale answer"
    assert second.seconds["wait"] >= 0.25


def _run(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore, text: str, **kw: Any
) -> Any:
    path = tmp_path / "segment.csv"
    path.write_text(text, encoding="utf-8")
    options = SyncOptions(
        ad_account_id=sandbox.ad_account_id,
        audience_name=NAME,
        poll_interval=0.02,
        wait_timeout=10,
        **kw,
    )
    prepare = PrepareOptions(max_reject_rate=kw.get("max_reject_rate", 0.5))
    with open_source(str(path)) as source, prepare_segment(source, prepare) as prepared:
        return mirror(prepared, client, options, uploader=upload_file, store=store)


def test_a_type_that_shrinks_by_half_is_refused_though_the_total_does_not(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    """1,200 emails replacing 1,000 emails and 1,333 phones: the total stays above half."""
    both = "email,phone\n" + "".join(
        f"u{i}@example.com,+1 201 555 {i:04d}\n" if i < 1333 else f"u{i}@example.com,\n"
        for i in range(1000)
    )
    both += "".join(f",+1 201 555 {i:04d}\n" for i in range(1000, 1333))
    first = _run(tmp_path, sandbox, client, store, both)
    assert first.identifiers == 2333
    emails_only = "email\n" + "".join(f"u{i}@example.com\n" for i in range(1200))
    with pytest.raises(SafetyError, match=r"phone: 0 identifiers is under half .* 1,333"):
        _run(tmp_path, sandbox, client, store, emails_only)
    assert len(sandbox.membership(first.audience_id)) == 2333  # nothing changed
    again = _run(tmp_path, sandbox, client, store, emails_only, allow_shrink=True)
    assert again.action == "replaced"


def test_a_mostly_rejected_column_is_refused_with_the_likely_fix(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    """UK national numbers read with the default region US: all rejected, nothing created."""
    text = "email,phone\n" + "".join(f"u{i}@example.com,07911 1{i:05d}\n" for i in range(5000))
    with pytest.raises(SafetyError) as refused:
        _run(tmp_path, sandbox, client, store, text)
    message = str(refused.value)
    assert "phone column 'phone': 5,000 of 5,000 non-empty values (100%)" in message
    assert "--default-region" in message
    assert "07911" not in message
    assert audiences(sandbox) == []
    # The threshold is a setting: 1 lets the emails through.
    assert _run(tmp_path, sandbox, client, store, text, max_reject_rate=1.0).action == "created"


def test_a_lost_upload_session_starts_over_once_with_a_new_url(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.config.expire_sessions = 1  # the first session dies after its first chunk
    events: list[tuple[str, dict[str, Any]]] = []
    report = sync(range(6000), events=lambda name, fields: events.append((name, fields)))
    assert report.action == "created"
    assert set(sandbox.membership(report.audience_id)) == expected(range(6000))
    names = [name for name, _ in events]
    assert names.count("upload") == 2
    assert names.count("session_restart") == 1
    uploads = [fields["upload_id"] for name, fields in events if name == "upload"]
    assert uploads[0] != uploads[1], "a new upload URL, not the lost session's"


def test_a_second_lost_session_fails_and_leaves_nothing(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    from spotify_audience_sync.errors import UploadSessionLostError

    sandbox.config.expire_sessions = 2
    with pytest.raises(UploadSessionLostError, match="upload session expired"):
        sync(range(6000))
    assert audiences(sandbox) == []


def test_a_namesake_differing_in_case_or_spaces_is_named_in_a_warning(
    sync: Callable[..., Any], client: AdsClient
) -> None:
    """'nu 200k' beside 'NU 200k ': the dry run names it, and so does the sync that creates."""
    from conftest import gcs_upload  # the plain protocol, without our uploader

    upload = client.new_upload_url()
    gcs_upload(upload.upload_url, b"type,value\n" + b"EMAIL_ID_SHA256," + b"a" * 64 + b"\n")
    other = client.create_audience("NU 200k ", None, upload.id)  # made elsewhere, spaces kept
    seen: list[tuple[str, dict[str, Any]]] = []
    dry = sync(range(1200), audience_name="nu 200k", dry_run=True, events=lambda *e: seen.append(e))
    assert dry.action == "would create"
    assert [fields for name, fields in seen if name == "warning"] == [
        {
            "level": "warning",
            "code": "similar_audience_name",
            "audience_id": other.id,
            "message": f"audience 'NU 200k ' ({other.id}) is named like 'nu 200k' but differs "
            "in case or surrounding spaces: it is not the audience synced; pass "
            f"--audience-id {other.id} to sync that one instead",
        }
    ]
    created = sync(range(1200), audience_name=" NU 200k ")  # stripped: still not 'NU 200k '
    assert created.action == "created"
    assert created.audience_name == "NU 200k"


def test_match_rates_per_person_and_per_identifier_refreshed_on_a_skip(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    first = sync(range(1500))  # 1,500 rows, each with an email and a phone: 3,000 identifiers
    assert (first.rows_with_identifier, first.identifiers) == (1500, 3000)
    assert first.match_rate_per_person == (first.size_min / 1500, first.size_max / 1500)
    assert first.match_rate == (first.size_min / 3000, first.size_max / 3000)
    # Spotify's estimate moves between runs; a skipped run reports today's, not nothing.
    sandbox.audiences._audiences[first.audience_id].size = {"min": 900, "max": 1200}
    skipped = sync(range(1500))
    assert skipped.action == "skipped"
    assert (skipped.size_min, skipped.size_max) == (900, 1200)
    assert skipped.to_dict()["match_rate"] == {
        "per_person": {"min": 0.6, "max": 0.8},
        "per_identifier": {"min": 0.3, "max": 0.4},
    }
    assert skipped.to_dict()["rows_with_identifier"] == 1500
    assert sync(range(1500), dry_run=True).size_min == 900  # "would skip" says it too


def test_a_failure_carries_the_report_of_what_was_done(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    sandbox.add_faults(FaultRule(route="createAudience", status=400))
    with pytest.raises(RemoteError) as failed:
        sync(range(1200))
    report = failed.value.report
    assert isinstance(report, SyncReport)
    assert (report.identifiers, report.audience_name, report.action) == (2400, NAME, None)
    assert report.upload_requests >= 1  # uploaded, then the create was refused
    assert report.bytes > 0


def test_the_report_is_there_before_the_run_and_filled_by_it(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    path = write_segment(tmp_path / "seg.csv", range(1200))
    options = SyncOptions(ad_account_id=sandbox.ad_account_id, audience_name=NAME, poll_interval=0)
    with open_source(str(path)) as source, prepare_segment(source) as prepared:
        run = Mirror(prepared, client, options, store=store, sleep=lambda _s: None)
        assert (run.report.audience_name, run.report.action) == (NAME, None)
        assert run.run() is run.report
    assert run.report.action == "created"
    assert run.report.audience_id is not None


def _race(sandbox: Sandbox, tmp_path: Path, people: range) -> list[tuple[SyncReport, list[Any]]]:
    """Two first syncs of NAME with separate state, forced to both find nothing and create."""
    resolved, created = threading.Barrier(2, timeout=20), threading.Barrier(2, timeout=20)
    results: list[tuple[SyncReport, list[Any]]] = [None, None]  # type: ignore[list-item]

    def one(n: int) -> None:
        seen: list[Any] = []

        def events(name: str, fields: dict[str, Any]) -> None:
            seen.append((name, fields))
            if name == "upload":
                resolved.wait()  # both resolved the name to nothing before either creates

        def sleep(seconds: float) -> None:
            if seconds == mirror_module.CREATE_SETTLE:
                created.wait()  # both created before either lists the name

        path = write_segment(tmp_path / f"seg-{n}.csv", people)
        options = SyncOptions(ad_account_id=sandbox.ad_account_id, audience_name=NAME)
        with (
            new_client(sandbox) as ads,
            open_source(str(path)) as source,
            prepare_segment(source) as prepared,
        ):
            store = StateStore(tmp_path / f"state-{n}")
            report = mirror(prepared, ads, options, store=store, events=events, sleep=sleep)
        results[n] = (report, seen)

    threads = [threading.Thread(target=one, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_race_of_creates_leaves_the_first_created_and_the_loser_deletes_its_own(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_module, "CREATE_SETTLE", 0.5)
    results = _race(sandbox, tmp_path, range(1200))
    remaining = audiences(sandbox)
    assert len(remaining) == 1
    winner = remaining[0]["id"]
    assert [report.audience_id for report, _ in results] == [winner, winner]
    assert [report.action for report, _ in results] == ["created", "created"]
    created = [next(f["audience_id"] for e, f in seen if e == "created") for _, seen in results]
    assert len(set(created)) == 2  # each created one: the race happened
    assert winner in created
    loser = 1 - created.index(winner)
    deleted = [f for e, f in results[loser][1] if f.get("code") == "duplicate_audience_deleted"]
    assert [(f["audience_id"], f["deleted_id"]) for f in deleted] == [(winner, created[loser])]
    assert not any(f.get("code") == "duplicate_audience_deleted" for _, f in results[1 - loser][1])
    # The winner holds the segment; the loser saved no state for an upload it did not make.
    assert set(sandbox.membership(winner)) == expected(range(1200))
    assert StateStore(tmp_path / f"state-{1 - loser}").load(sandbox.ad_account_id, winner)
    assert StateStore(tmp_path / f"state-{loser}").load(sandbox.ad_account_id, winner) is None


def test_the_race_is_kept_when_the_name_cannot_be_listed_after_the_create(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def events(name: str, fields: dict[str, Any]) -> None:
        seen.append((name, fields))
        if name == "created":  # the list after the create fails: uploaded and created stands
            sandbox.add_faults(FaultRule(route="batchGetAudiences", status=400))

    report = sync(range(1200), events=events)
    assert (report.action, report.status) == ("created", "BOOKABLE")
    assert ("race_unchecked", {"level": "warning", "reason": "RemoteError"}) in seen
    assert len(audiences(sandbox)) == 1


def test_a_run_that_finds_a_race_settling_waits_for_the_losers(
    tmp_path: Path, sandbox: Sandbox, client: AdsClient, store: StateStore
) -> None:
    first, second = (_upload_elsewhere(client, NAME) for _ in range(2))
    young = max((first, second), key=lambda a: (a.created_at, a.id))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the racer that lost deletes its duplicate meanwhile
        sleeps.append(seconds)
        if len(sleeps) == 2:
            client.delete_audience(young.id)

    path = write_segment(tmp_path / "seg.csv", range(1200))
    options = SyncOptions(ad_account_id=sandbox.ad_account_id, audience_name=NAME, poll_interval=0)
    with open_source(str(path)) as source, prepare_segment(source) as prepared:
        report = mirror(prepared, client, options, store=store, sleep=sleep)
    assert report.action == "replaced"
    assert report.audience_id != young.id
    assert sleeps[:2] == [0.0, 0.0]  # 2 x CREATE_SETTLE, patched to 0 here


def _upload_elsewhere(client: AdsClient, name: str) -> Any:
    from conftest import gcs_upload  # the plain protocol, without our uploader

    upload = client.new_upload_url()
    gcs_upload(upload.upload_url, b"type,value\n" + b"EMAIL_ID_SHA256," + b"a" * 64 + b"\n")
    return client.create_audience(name, None, upload.id)
