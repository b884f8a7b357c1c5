"""Names, lookalikes and orphans kept in step, against the sandbox and both state backends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from conftest import gcs_upload, pg_query
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.spotify.client import AdsClient, StaticToken
from spotify_audience_sync.sync.backend import StateBackend, open_state
from spotify_audience_sync.sync.orphans import find_orphans, owner_key, prune_orphans
from spotify_audience_sync.sync.state import SyncState
from spotify_audience_sync.sync.upkeep import (
    ensure_lookalike,
    lookalike_name,
    rename,
    wanted_edits,
)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[AdsClient]:
    with AdsClient(
        base_url=sandbox.api_base_url,
        ad_account_id=sandbox.ad_account_id,
        tokens=StaticToken(str(sandbox.mint_tokens()["access_token"])),
        sleep=lambda _s: None,
    ) as api:
        yield api


@pytest.fixture(params=["directory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[StateBackend]:  # type: ignore[no-untyped-def]
    url = (
        str(tmp_path / "state")
        if request.param == "directory"
        else request.getfixturevalue("pg_url")
    )
    with open_state(url) as backend:
        yield backend


def _audience(client: AdsClient, make_csv, name: str) -> str:
    slot = client.new_upload_url()
    assert gcs_upload(slot.upload_url, make_csv(1200)).status_code == 200
    return client.create_audience(name, "first words", slot.id).id


def _state(account: str, audience_id: str, name: str, owner: str | None) -> SyncState:
    return SyncState(account, audience_id, name, "2026-12-01T00:00:00Z", 1200, owner=owner)


def test_name_and_description_follow_the_run(client: AdsClient, make_csv) -> None:
    audience = client.get_audience(_audience(client, make_csv, "Old name"))
    assert not wanted_edits(audience, "Old name", None)
    assert not wanted_edits(audience, None, "first words")
    edits = wanted_edits(audience, "New name", "second words")
    assert edits.fields() == ["name", "description"]
    renamed = rename(client, audience, edits)
    assert (renamed.name, renamed.description) == ("New name", "second words")
    assert client.get_audience(audience.id).name == "New name"


def test_exactly_one_lookalike_per_seed(client: AdsClient, make_csv) -> None:
    seed = client.get_audience(_audience(client, make_csv, "Seeded"))
    first, created = ensure_lookalike(client, seed)
    assert created
    assert first.name == "Seeded lookalike"
    again, created_again = ensure_lookalike(client, seed)  # state lost: found by its seed
    assert (again.id, created_again) == (first.id, False)
    remembered, _ = ensure_lookalike(client, seed, known_id=first.id)
    assert remembered.id == first.id
    lookalikes = list(client.list_audiences(audience_types=["LOOKALIKE"]))
    assert [a.id for a in lookalikes] == [first.id]


def test_a_deleted_lookalike_is_made_again(client: AdsClient, make_csv) -> None:
    seed = client.get_audience(_audience(client, make_csv, "Seeded twice"))
    first, _ = ensure_lookalike(client, seed)
    client.delete_audience(first.id)
    second, created = ensure_lookalike(client, seed, known_id=first.id)
    assert created
    assert second.id != first.id


def test_lookalike_name_fits_in_80() -> None:
    name = lookalike_name("x" * 80)
    assert len(name) == 80
    assert name.endswith(" lookalike")


def test_state_keeps_owner_and_lookalike_across_plain_saves(store: StateBackend) -> None:
    account = "5a1d8c9e-0000-4000-8000-000000000001"
    owner = owner_key("column", "segment.csv", "team", "CRM {value}")
    store.save(replace(_state(account, "a1", "CRM a", owner), lookalike_id="l1"))
    store.save(_state(account, "a1", "CRM a", None))  # a Mirror save knows neither
    [kept] = store.owned(account, owner)
    assert (kept.audience_id, kept.owner, kept.lookalike_id) == ("a1", owner, "l1")
    store.forget(account, "a1")
    assert store.owned(account, owner) == []
    assert store.load(account, "a1") is None


def test_orphans_found_reported_and_pruned(
    client: AdsClient, store: StateBackend, make_csv
) -> None:
    account = client.get_ad_account().id
    owner, other = owner_key("plan", "plan.yaml", "crm"), owner_key("plan", "plan.yaml", "web")
    kept = _audience(client, make_csv, "CRM kept")
    gone = _audience(client, make_csv, "CRM gone")
    live = _audience(client, make_csv, "CRM live")
    foreign = _audience(client, make_csv, "Web")
    for audience_id, name, by in (
        (kept, "CRM kept", owner), (gone, "CRM gone", owner),
        (live, "CRM live", owner), (foreign, "Web", other),
    ):  # fmt: skip
        store.save(_state(account, audience_id, name, by))
    orphans = find_orphans(store, account, owner, [kept])
    assert {s.audience_id for s in orphans} == {gone, live}

    reported = prune_orphans(client, store, orphans, delete=False)
    assert {o.outcome for o in reported} == {"kept"}
    assert len(list(client.list_audiences(q="CRM"))) == 3
    assert {s.audience_id for s in store.owned(account, owner)} == {kept, gone, live}


def test_prune_deletes_only_its_own_and_keeps_live(
    sandbox: Sandbox, client: AdsClient, store: StateBackend, make_csv
) -> None:
    account = sandbox.ad_account_id
    owner = owner_key("column", "segment.csv", "team", "CRM {value}")
    gone = _audience(client, make_csv, "CRM gone")
    live = _audience(client, make_csv, "CRM live")
    untouched = _audience(client, make_csv, "CRM made by hand")  # in no state: never deleted
    sandbox.audiences.force_status(live, "LIVE")
    for audience_id, name in ((gone, "CRM gone"), (live, "CRM live")):
        store.save(_state(account, audience_id, name, owner))
    results = prune_orphans(client, store, find_orphans(store, account, owner, []), delete=True)
    assert {(o.audience_id, o.outcome) for o in results} == {(gone, "deleted"), (live, "live")}
    remaining = {a.id for a in client.list_audiences(q="CRM")}
    assert remaining == {live, untouched}
    assert [s.audience_id for s in store.owned(account, owner)] == [live]


def test_postgres_migrates_a_version_1_schema_to_owners(pg_url: str) -> None:
    schema = pg_url.rsplit("schema=", 1)[1]
    account = "5a1d8c9e-0000-4000-8000-000000000001"
    with open_state(pg_url) as backend:
        backend.save(_state(account, "a1", "Before", None))
    # Back to what version 1 of the tool left: no owner columns, version 1 recorded.
    pg_query(
        f'ALTER TABLE "{schema}".audience_state DROP COLUMN owner, DROP COLUMN lookalike_id, '
        "DROP COLUMN staged"
    )
    pg_query(f'DELETE FROM "{schema}".schema_version WHERE version > 1')
    with open_state(pg_url) as backend:
        assert backend.load(account, "a1") is not None  # the old row survives the migration
        backend.save(_state(account, "a1", "Before", "plan:x"))
        assert [s.audience_id for s in backend.owned(account, "plan:x")] == ["a1"]


def test_postgres_migrates_a_version_2_schema_to_staged_digests(pg_url: str) -> None:
    """Version 3 adds the staged multiset digest: an old row reads as none (counted first)."""
    schema = pg_url.rsplit("schema=", 1)[1]
    account = "5a1d8c9e-0000-4000-8000-000000000001"
    with open_state(pg_url) as backend:
        backend.save(_state(account, "a1", "Before", None))
    pg_query(f'ALTER TABLE "{schema}".audience_state DROP COLUMN staged')
    pg_query(f'DELETE FROM "{schema}".schema_version WHERE version > 2')
    with open_state(pg_url) as backend:
        old = backend.load(account, "a1")
        assert old is not None
        assert old.staged == ""
        backend.save(replace(old, staged="ab" * 16))
        again = backend.load(account, "a1")
        assert again is not None
        assert again.staged == "ab" * 16
