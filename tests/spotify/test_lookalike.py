"""The ad account read and LOOKALIKE audiences: the client against the in-process sandbox."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conftest import gcs_upload
from spotify_audience_sync.errors import AuthError, ConfigError, RemoteError
from spotify_audience_sync.sandbox import FaultRule, Sandbox
from spotify_audience_sync.sandbox.audiences import LOOKALIKE_FACTOR
from spotify_audience_sync.spotify.client import AdsClient, StaticToken

UNKNOWN_ACCOUNT = "0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d"


def _client(sandbox: Sandbox, account: str | None = None) -> AdsClient:
    return AdsClient(
        base_url=sandbox.api_base_url,
        ad_account_id=account or sandbox.ad_account_id,
        tokens=StaticToken(str(sandbox.mint_tokens()["access_token"])),
        sleep=lambda _s: None,
    )


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[AdsClient]:
    with _client(sandbox) as api:
        yield api


def _seed(client: AdsClient, make_csv, rows: int = 1500) -> str:
    slot = client.new_upload_url()
    assert gcs_upload(slot.upload_url, make_csv(rows)).status_code == 200
    return client.create_audience("Seed list", None, slot.id).id


def _settled(client: AdsClient, audience_id: str) -> str | None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        audience = client.get_audience(audience_id)
        if audience.status != "PROCESSING":
            return str(audience.status)
        time.sleep(0.02)
    return None


def test_ad_account_is_read(client: AdsClient, sandbox: Sandbox) -> None:
    account = client.get_ad_account()
    assert account.id == sandbox.ad_account_id
    assert account.status == "ACTIVE"


def test_unknown_ad_account_is_a_config_error_naming_it(sandbox: Sandbox) -> None:
    with _client(sandbox, UNKNOWN_ACCOUNT) as api, pytest.raises(ConfigError) as caught:
        api.get_ad_account()
    assert UNKNOWN_ACCOUNT in str(caught.value)
    assert caught.value.exit_code == 78


def test_ad_account_without_access_is_an_auth_error(client: AdsClient, sandbox: Sandbox) -> None:
    sandbox.faults.add([FaultRule(route="getAdAccount", status=403)])
    with pytest.raises(AuthError) as caught:
        client.get_ad_account()
    assert caught.value.exit_code == 77


def test_lookalike_is_modelled_on_its_seed(client: AdsClient, make_csv) -> None:
    seed = _seed(client, make_csv)
    lookalike = client.create_lookalike("Seed list lookalike", seed, "modelled")
    assert lookalike.type == "LOOKALIKE"
    assert lookalike.seed_audience_id == seed
    assert client.get_audience(seed).lookalike_audience_ids == [lookalike.id]
    assert _settled(client, lookalike.id) == "BOOKABLE"
    seed_size = client.get_audience(seed).size
    size = client.get_audience(lookalike.id).size
    assert seed_size is not None
    assert seed_size.max
    assert size is not None
    assert size.max is not None
    assert size.max >= seed_size.max * LOOKALIKE_FACTOR // 2
    found = list(client.list_audiences(audience_types=["LOOKALIKE"]))
    assert [a.id for a in found] == [lookalike.id]
    assert seed not in {a.id for a in found}


def test_lookalike_needs_a_customer_list_seed(client: AdsClient, make_csv) -> None:
    with pytest.raises(RemoteError) as unknown:
        client.create_lookalike("No seed", UNKNOWN_ACCOUNT)
    assert unknown.value.status == 400
    seed = _seed(client, make_csv)
    lookalike = client.create_lookalike("First", seed)
    with pytest.raises(RemoteError) as chained:
        client.create_lookalike("Second order", lookalike.id)
    assert chained.value.status == 400


def test_deleting_a_lookalike_unlinks_it_from_its_seed(client: AdsClient, make_csv) -> None:
    seed = _seed(client, make_csv)
    lookalike = client.create_lookalike("Gone soon", seed)
    assert client.delete_audience(lookalike.id) == 1
    assert client.get_audience(seed).lookalike_audience_ids == []


def test_edit_must_name_the_audiences_own_type(client: AdsClient, make_csv) -> None:
    seed = _seed(client, make_csv)
    lookalike = client.create_lookalike("Typed", seed)
    with pytest.raises(RemoteError):
        client.edit_audience(lookalike.id, name="Typed again")  # sent as CUSTOM
    edited = client.edit_audience(lookalike.id, name="Typed again", audience_type="LOOKALIKE")
    assert edited.name == "Typed again"
