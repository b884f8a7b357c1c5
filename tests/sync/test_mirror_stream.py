"""Mirror sync that streams its upload from the deduplicating pass (#24), against the sandbox.

The guards and the unchanged check then run where the upload would complete; these tests
attack that gate: a refusal or an unchanged set must cancel the session and leave the audience
exactly as it was, and the fingerprint, the state and the file must equal the counted path's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import spotify_audience_sync.sync.mirror as mirror_module
from spotify_audience_sync.errors import SafetyError
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.spotify.client import AdsClient, StaticToken
from spotify_audience_sync.spotify.upload import upload_file
from spotify_audience_sync.sync.mirror import SyncOptions, mirror
from spotify_audience_sync.sync.state import StateStore

NAME = "streamed customers"


def write_segment(path: Path, people: list[int]) -> Path:
    """Made-up people, one messy email each (a person listed twice is a duplicate row)."""
    lines = ["Email"] + [f"  User{i}@Example.com " for i in people]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every segment streams here, however small; no pause after a create (one thread)."""
    monkeypatch.setattr(mirror_module, "STREAM_FROM", 0)
    monkeypatch.setattr(mirror_module, "CREATE_SETTLE", 0.0)


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


class Recorder:
    """The real upload, recording what each call was given and how it ended."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, url: str, chunks: Any, **kwargs: Any) -> Any:
        call = {**kwargs, "completed": False}
        self.calls.append(call)
        result = upload_file(url, chunks, **kwargs)
        call["completed"] = True
        return result


@pytest.fixture
def sync(tmp_path: Path, sandbox: Sandbox, client: AdsClient) -> Callable[..., Any]:
    store = StateStore(tmp_path / "state")

    def run(people: list[int], *, uploader: Any = None, events: Any = None, **options: Any) -> Any:
        path = write_segment(tmp_path / f"seg-{len(people)}-{sum(people)}.csv", people)
        opts = SyncOptions(
            ad_account_id=sandbox.ad_account_id,
            audience_name=NAME,
            poll_interval=0.02,
            wait_timeout=10,
            chunk_size=256 * 1024,
            **options,
        )
        with open_source(str(path)) as source, prepare_segment(source, PrepareOptions()) as p:
            uploader = uploader or upload_file
            return mirror(p, client, opts, uploader=uploader, store=store, events=events)

    run.store = store  # type: ignore[attr-defined]
    return run


def emails(sandbox: Sandbox, audience_id: str) -> int:
    return len(set(sandbox.membership(audience_id)))


def test_a_new_audience_streams_and_gets_the_exact_file_and_fingerprint(
    sync: Callable[..., Any], sandbox: Sandbox, tmp_path: Path
) -> None:
    people = list(range(3000)) + list(range(500))  # 500 duplicate rows
    recorder = Recorder()
    report = sync(people, uploader=recorder)
    assert report.action == "created"
    (call,) = recorder.calls
    assert call["total_bytes"] is None  # streamed: the size is known only at the end
    assert call["before_finalize"] is not None
    assert emails(sandbox, report.audience_id) == 3000
    assert report.identifiers == 3000
    # The fingerprint equals the one the counting pass computes for the same input.
    path = write_segment(tmp_path / "again.csv", people)
    with open_source(str(path)) as source, prepare_segment(source, PrepareOptions()) as p:
        assert report.fingerprint == p.finalize()
    state = sync.store.load(sandbox.ad_account_id, report.audience_id)  # type: ignore[attr-defined]
    assert state.fingerprint == report.fingerprint
    assert state.staged


def test_the_same_segment_again_skips_before_any_upload(sync: Callable[..., Any]) -> None:
    people = list(range(2000))
    sync(people)
    recorder = Recorder()
    assert sync(people, uploader=recorder).action == "skipped"
    assert recorder.calls == []  # same staged records: counted first, no upload URL used


def test_same_set_other_duplicates_is_found_unchanged_at_the_end_and_cancelled(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    first = sync(list(range(2000)))
    before = sandbox.audiences.get(sandbox.ad_account_id, first.audience_id)
    recorder = Recorder()
    again = sync(list(range(2000)) + list(range(100)), uploader=recorder)
    assert again.action == "skipped"
    (call,) = recorder.calls
    assert call["completed"] is False  # the gate refused to complete the object
    after = sandbox.audiences.get(sandbox.ad_account_id, first.audience_id)
    assert after["updated_at"] == before["updated_at"]
    assert after["status"] == before["status"]


def test_a_shrink_found_at_the_end_cancels_the_upload_and_keeps_the_audience(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    first = sync(list(range(3000)))
    # 1,600 rows pass the bound (over half of 3,000) but hold only 1,200 people.
    shrunk = list(range(1200)) + list(range(400))
    recorder = Recorder()
    with pytest.raises(SafetyError, match="under half of the last sync"):
        sync(shrunk, uploader=recorder)
    (call,) = recorder.calls
    assert call["completed"] is False
    assert emails(sandbox, first.audience_id) == 3000  # untouched
    assert sandbox.audiences.get(sandbox.ad_account_id, first.audience_id)["status"] != "PROCESSING"


def test_a_sure_shrink_is_refused_before_anything_is_sent(sync: Callable[..., Any]) -> None:
    sync(list(range(3000)))
    recorder = Recorder()
    with pytest.raises(SafetyError, match="1,400 identifiers is under half"):
        sync(list(range(1400)), uploader=recorder)
    assert recorder.calls == []  # the bound decided: counted, and refused, before any upload


def test_a_lost_session_restarts_the_streamed_file_from_the_kept_partitions(
    sync: Callable[..., Any], sandbox: Sandbox
) -> None:
    """The first pass deleted nothing it needs: a new session re-sends the whole file."""
    sandbox.config.expire_sessions = 1  # the first session dies after its first chunk
    people = list(range(9000))
    events: list[str] = []
    report = sync(people, events=lambda name, _fields: events.append(name))
    assert report.action == "created"
    assert emails(sandbox, report.audience_id) == 9000
    assert events.count("upload") == 2
    assert events.count("prepared") == 1  # counted once, though the file was produced twice


def test_a_streamed_file_past_the_size_limit_is_cancelled_when_it_passes_it(
    sync: Callable[..., Any], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spotify_audience_sync.sync.guards as guards

    monkeypatch.setattr(guards, "MAX_BYTES", 300 * 1024)  # ~3,700 type-value rows
    recorder = Recorder()
    with pytest.raises(SafetyError, match="upload was cancelled"):
        sync(list(range(9000)), uploader=recorder)
    (call,) = recorder.calls
    assert call["completed"] is False
    assert sandbox.audiences.list(sandbox.ad_account_id, {})["audiences"] == []
