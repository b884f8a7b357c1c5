"""The emulator itself, over real HTTP: validation rules, GCS protocol, processing, limits."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import google_crc32c
import httpx2
import pytest
from google.resumable_media._upload import ResumableUpload

from conftest import gcs_upload, sha
from spotify_audience_sync.sandbox import FaultRule, Sandbox, run_sandbox
from spotify_audience_sync.sandbox.gcs import CHUNK_MULTIPLE
from spotify_audience_sync.sandbox.membership import parse_membership, size_range
from spotify_audience_sync.spotify.client import AdsClient, StaticToken


class Api:
    """A bare httpx2 client with a minted bearer token, so the sandbox is tested on its own."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        token = sandbox.mint_tokens()["access_token"]
        self.prefix = f"{sandbox.api_base_url}/ad_accounts/{sandbox.ad_account_id}/audiences"
        self.http = httpx2.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def __call__(self, method: str, path: str = "", **kwargs: Any) -> httpx2.Response:
        return self.http.request(method, self.prefix + path, **kwargs)

    def audience_from(self, data: bytes, name: str = "Sandbox test") -> dict[str, Any]:
        slot = self("POST", "/upload_url").json()
        assert gcs_upload(slot["upload_url"], data).status_code == 200
        body = {"audience_type": "CUSTOM", "subtype": "CUSTOMER_LIST", "name": name}
        created = self("POST", "", json={**body, "audience_id": slot["id"]})
        assert created.status_code == 201, created.text
        return dict(created.json())

    def settle(self, audience_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            found = self("GET", f"/{audience_id}").json()
            if found["status"] != "PROCESSING" or time.monotonic() > deadline:
                return dict(found)
            time.sleep(0.02)


@pytest.fixture
def api(sandbox: Sandbox) -> Any:
    client = Api(sandbox)
    yield client
    client.http.close()


def test_processing_ends_bookable_with_a_size_range(api, make_csv) -> None:
    created = api.audience_from(make_csv(1200))
    assert created["status"] == "PROCESSING"
    settled = api.settle(created["id"])
    assert settled["status"] == "BOOKABLE"
    assert settled["size"] == size_range(1200)
    assert settled["size"]["min"] < 1200 < settled["size"]["max"] + 1000


def test_fewer_than_1000_well_formed_rows_end_empty(api, make_csv) -> None:
    bad_rows = b"".join(b"EMAIL_ID_SHA256,not-a-hash\n" for _ in range(600))
    created = api.audience_from(make_csv(999) + bad_rows)
    assert api.settle(created["id"])["status"] == "EMPTY"


def test_replacement_restarts_processing_and_replaces_membership(api, sandbox, make_csv) -> None:
    created = api.audience_from(make_csv(10))
    assert api.settle(created["id"])["status"] == "EMPTY"
    slot = api("POST", f"/upload_url/{created['id']}").json()
    assert slot["id"] != created["id"]
    assert gcs_upload(slot["upload_url"], make_csv(1500, start=5)).status_code == 200
    assert api("GET", f"/{created['id']}").json()["status"] == "PROCESSING"
    assert api.settle(created["id"])["status"] == "BOOKABLE"
    members = sandbox.membership(created["id"])
    assert len(members) == 1500
    assert members[0] == ("EMAIL_ID_SHA256", sha("user5@example.com"))


def test_wide_layout_is_counted() -> None:
    header = b"EMAIL_ID_SHA256,PHONE_NUMBER_SHA256\n"
    rows = b"".join(
        f"{sha(str(i))},{sha('p' + str(i)) if i % 2 else ''}\n".encode() for i in range(10)
    )
    members = parse_membership(header + rows)
    assert members.layout == "wide"
    assert members.well_formed == 15
    assert parse_membership(b"\xff\xfe").well_formed == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param({"name": "x"}, "name", id="name-too-short"),
        pytest.param({"name": "n" * 81}, "name", id="name-too-long"),
        pytest.param({"name": "ok", "description": "d" * 81}, "description", id="desc-too-long"),
        pytest.param({"name": "ok", "audience_category": "CUSTOM"}, "read-only", id="category"),
        pytest.param({"name": "ok", "audience_type": "OTHER"}, "audience_type", id="type-enum"),
        pytest.param({"name": "ok", "subtype": "NOPE"}, "subtype", id="subtype-enum"),
        pytest.param({"name": "ok", "audience_id": "not-a-uuid"}, "UUID", id="upload-id"),
    ],
)
def test_create_validation(api, body, fragment) -> None:
    slot = api("POST", "/upload_url").json()
    full = {
        "audience_type": "CUSTOM",
        "subtype": "CUSTOMER_LIST",
        "audience_id": slot["id"],
        **body,
    }
    answer = api("POST", "", json=full)
    assert answer.status_code == 400
    assert fragment in answer.json()["messages"][0]
    assert answer.json()["sp_trace_id"]


def test_create_before_the_upload_completes_is_refused(api) -> None:
    slot = api("POST", "/upload_url").json()
    body = {"audience_type": "CUSTOM", "subtype": "CUSTOMER_LIST", "name": "ok"}
    answer = api("POST", "", json={**body, "audience_id": slot["id"]})
    assert answer.status_code == 400


@pytest.mark.parametrize(
    ("params", "status"),
    [({"limit": 0}, 400), ({"limit": 51}, 400), ({"limit": 50}, 200), ({"sort_field": "X"}, 400)],
)
def test_list_limits(api, params, status) -> None:
    assert api("GET", "", params=params).status_code == status


def test_list_search_sort_and_paging(api, make_csv) -> None:
    for name in ("Beta list", "alpha list", "Gamma other"):
        api.audience_from(make_csv(5), name=name)
    page = api(
        "GET", "", params={"q": "LIST", "sort_field": "NAME", "sort_direction": "ASC"}
    ).json()
    assert [a["name"] for a in page["audiences"]] == ["alpha list", "Beta list"]
    assert page["paging"]["total_results"] == 2
    second = api("GET", "", params={"limit": 2, "offset": 2}).json()
    assert len(second["audiences"]) == 1
    assert second["paging"]["total_results"] == 3


def test_literal_routes_come_before_audience_ids(api) -> None:
    assert api("GET", "/upload_url").status_code == 405
    assert api("GET", "/datasets").status_code == 200
    assert api("GET", "/not-a-uuid").status_code == 400
    missing = api("GET", "/0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d")
    assert missing.status_code == 404
    assert missing.json()["error_codes"][0]["code"] == "NOT_FOUND"


def test_unknown_account_is_404(sandbox) -> None:
    token = sandbox.mint_tokens()["access_token"]
    url = f"{sandbox.api_base_url}/ad_accounts/0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d/audiences"
    answer = httpx2.get(url, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404


def test_edit_needs_audience_type_and_delete_refuses_live(api, sandbox, make_csv) -> None:
    created = api.audience_from(make_csv(3))
    assert api("PATCH", f"/{created['id']}", json={"name": "new"}).status_code == 400
    edited = api("PATCH", f"/{created['id']}", json={"audience_type": "CUSTOM", "name": "new"})
    assert edited.json()["name"] == "new"
    sandbox.audiences.force_status(created["id"], "LIVE")
    assert api("DELETE", f"/{created['id']}").status_code == 409
    sandbox.audiences.force_status(created["id"], "BOOKABLE")
    assert api("DELETE", f"/{created['id']}").json() == {"deletion_count": 1}
    assert api("GET", f"/{created['id']}").status_code == 404


def test_error_codes_key_can_be_switched(api, sandbox) -> None:
    sandbox.config.update({"error_codes_key": "errorCodes"})
    body = api("GET", "/not-a-uuid").json()
    assert "errorCodes" in body
    assert "error_codes" not in body


def test_bearer_token_is_required_and_expires(sandbox) -> None:
    url = f"{sandbox.api_base_url}/ad_accounts/{sandbox.ad_account_id}/audiences"
    assert httpx2.get(url).status_code == 401
    token = sandbox.mint_tokens()["access_token"]
    assert httpx2.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sandbox.accounts.expire_access_tokens()
    expired = httpx2.get(url, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["messages"][0]


def test_rate_limit_answers_429_with_headers() -> None:
    with run_sandbox(rate_limit=3) as sandbox:
        api = Api(sandbox)
        answers = [api("GET", "") for _ in range(4)]
        api.http.close()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].headers["X-RateLimit-Limit"] == "3"


def test_token_endpoint_rotation_and_invalid_grant(sandbox) -> None:
    auth = (sandbox.config.client_id, sandbox.config.client_secret)
    first = sandbox.mint_tokens()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    rotated = httpx2.post(sandbox.token_url, data=form, auth=auth)
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != first
    again = httpx2.post(sandbox.token_url, data=form, auth=auth)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    wrong = httpx2.post(sandbox.token_url, data=form, auth=("sandbox-client", "wrong"))
    assert wrong.status_code == 401


@pytest.mark.parametrize("rotate", [True, False], ids=["rotating", "not-rotating"])
def test_rotation_is_a_knob_tests_can_rely_on(rotate: bool) -> None:
    with run_sandbox(rotate_refresh_tokens=rotate) as sandbox:
        auth = (sandbox.config.client_id, sandbox.config.client_secret)
        first = sandbox.mint_tokens()["refresh_token"]
        form = {"grant_type": "refresh_token", "refresh_token": first}
        for _ in range(3):  # every refresh, not only the first
            reply = httpx2.post(sandbox.token_url, data=form, auth=auth)
            assert reply.status_code == 200
            assert (reply.json().get("refresh_token") not in (None, first)) is rotate
            if rotate:
                assert httpx2.post(sandbox.token_url, data=form, auth=auth).status_code == 400
                form["refresh_token"] = reply.json()["refresh_token"]


def test_authorize_rejects_non_loopback_redirects(sandbox) -> None:
    params = {
        "client_id": sandbox.config.client_id,
        "response_type": "code",
        "redirect_uri": "https://evil.example/callback",
    }
    assert httpx2.get(sandbox.authorize_url, params=params).status_code == 400


# --- GCS -------------------------------------------------------------------------------------
@pytest.fixture
def slot(api) -> dict[str, Any]:
    return dict(api("POST", "/upload_url").json())


def _start(url: str, **headers: str) -> httpx2.Response:
    return httpx2.post(
        url, headers={"x-goog-resumable": "start", "Content-Type": "text/csv", **headers}
    )


def test_gcs_rejects_an_authorization_header_and_bad_signatures(slot) -> None:
    refused = _start(slot["upload_url"], Authorization="Bearer x")
    assert refused.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in refused.text
    forged = slot["upload_url"].replace("X-Goog-Signature=", "X-Goog-Signature=00")
    assert _start(forged).status_code == 403
    assert httpx2.post(slot["upload_url"], headers={"Content-Type": "text/csv"}).status_code == 400


def test_gcs_chunked_upload_with_308_and_status_query(slot, sandbox, api, make_csv) -> None:
    data = make_csv(8000)  # ~630 KB: two full 256 KiB chunks and a tail
    session = _start(slot["upload_url"]).headers["Location"]
    first = httpx2.put(
        session,
        content=data[:CHUNK_MULTIPLE],
        headers={"Content-Range": f"bytes 0-{CHUNK_MULTIPLE - 1}/*"},
    )
    assert first.status_code == 308
    assert first.headers["Range"] == f"bytes=0-{CHUNK_MULTIPLE - 1}"
    status = httpx2.put(session, headers={"Content-Range": "bytes */*"})
    assert status.status_code == 308
    assert status.headers["Range"] == f"bytes=0-{CHUNK_MULTIPLE - 1}"
    odd = httpx2.put(
        session,
        content=data[CHUNK_MULTIPLE:-10],
        headers={"Content-Range": f"bytes {CHUNK_MULTIPLE}-{len(data) - 11}/*"},
    )
    assert odd.status_code == 400  # a non-final chunk must be a multiple of 256 KiB
    rest = data[CHUNK_MULTIPLE:]
    done = httpx2.put(
        session,
        content=rest,
        headers={"Content-Range": f"bytes {CHUNK_MULTIPLE}-{len(data) - 1}/{len(data)}"},
    )
    assert done.status_code == 200
    body = {"audience_type": "CUSTOM", "subtype": "CUSTOMER_LIST", "name": "chunked"}
    assert api("POST", "", json={**body, "audience_id": slot["id"]}).status_code == 201
    assert len(sandbox.membership(slot["id"])) == 8000


def test_gcs_drop_mid_body_then_resume(slot, sandbox, make_csv) -> None:
    data = make_csv(1000)
    session = _start(slot["upload_url"]).headers["Location"]
    sandbox.add_faults(FaultRule(route="gcsPut", drop=True))
    with pytest.raises(httpx2.TransportError):
        httpx2.put(
            session, content=data, headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
        )
    status = httpx2.put(session, headers={"Content-Range": f"bytes */{len(data)}"})
    assert status.status_code == 308
    assert "Range" not in status.headers
    assert httpx2.put(session, content=data).status_code == 200


def test_gcs_unknown_session_is_404(slot) -> None:
    assert httpx2.put(slot["upload_url"] + "&upload_id=nope", content=b"x").status_code == 404


def test_fault_rule_syntax() -> None:
    assert FaultRule.parse("getAudience:503:2") == FaultRule(
        route="getAudience", status=503, count=2
    )
    assert FaultRule.parse("gcsPut:drop").drop
    with pytest.raises(ValueError, match="unknown route"):
        FaultRule.parse("nope:500")


def test_a_slow_answer_times_out_and_the_get_is_retried(sandbox, make_csv) -> None:
    api = Api(sandbox)
    created = api.audience_from(make_csv(3))
    api.http.close()
    sandbox.add_faults(FaultRule(route="getAudience", delay=1.0))
    token = StaticToken(str(sandbox.mint_tokens()["access_token"]))
    with AdsClient(
        base_url=sandbox.api_base_url,
        ad_account_id=sandbox.ad_account_id,
        tokens=token,
        timeout=0.3,
        sleep=lambda _: None,
    ) as client:
        assert client.get_audience(created["id"]).id == created["id"]
    assert sandbox.config.faults == []


class _HttpxResumable(ResumableUpload):
    """google-resumable-media's sans-I/O core driven by httpx2, as the uploader will drive it."""

    @staticmethod
    def _get_status_code(response: httpx2.Response) -> int:
        return response.status_code

    @staticmethod
    def _get_headers(response: httpx2.Response) -> Any:
        return response.headers

    @staticmethod
    def _get_body(response: httpx2.Response) -> bytes:
        return response.content


@pytest.mark.parametrize("known_size", [True, False], ids=["known-size", "unknown-size"])
def test_google_resumable_media_uploads_to_the_sandbox(slot, sandbox, make_csv, known_size) -> None:
    data = make_csv(9000)
    upload = _HttpxResumable(slot["upload_url"], CHUNK_MULTIPLE)
    total = len(data) if known_size else None
    method, url, _, headers = upload._prepare_initiate_request(
        io.BytesIO(data), {}, "text/csv", total_bytes=total, stream_final=False
    )
    # the two things the library gets wrong for signed XML-API URLs (see the library notes)
    headers["x-goog-resumable"] = "start"
    with httpx2.Client(timeout=10) as http:
        upload._process_initiate_response(http.request(method, url, content=b"", headers=headers))
        sends = 0
        while not upload.finished:
            method, url, payload, headers = upload._prepare_request()
            upload._process_resumable_response(
                http.request(method, url, content=payload, headers=headers), len(payload)
            )
            sends += 1
    assert sends == 3
    assert sandbox.audiences.slot(slot["id"]).membership.well_formed == 9000


def test_gcs_final_answer_carries_crc32c_and_delete_cancels(slot, sandbox, make_csv) -> None:
    data = make_csv(10)
    session = _start(slot["upload_url"]).headers["Location"]
    done = httpx2.put(session, content=data)
    crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    assert f"crc32c={crc}" in done.headers["x-goog-hash"]
    assert done.headers["x-goog-stored-content-length"] == str(len(data))
    again = _start(slot["upload_url"]).headers["Location"]
    assert (
        httpx2.put(again, content=data[:100], headers={"Content-Range": "bytes 0-99/*"}).status_code
        == 400
    )
    assert httpx2.delete(again).status_code == 499
    assert httpx2.put(again, headers={"Content-Range": "bytes */*"}).status_code == 404
    assert httpx2.delete(again, headers={"Authorization": "Bearer x"}).status_code == 403
    assert [s["cancelled"] for s in sandbox.upload_stats(slot["id"])] == [False, True]


def test_gcs_partial_ack_and_a_drop_keep_whole_256_kib_units(slot, sandbox, make_csv) -> None:
    data = make_csv(20_000)
    session = _start(slot["upload_url"]).headers["Location"]
    chunk = 2 * CHUNK_MULTIPLE
    sandbox.add_faults(FaultRule(route="gcsPut", ack_bytes=CHUNK_MULTIPLE))
    first = httpx2.put(
        session, content=data[:chunk], headers={"Content-Range": f"bytes 0-{chunk - 1}/*"}
    )
    assert (first.status_code, first.headers["Range"]) == (308, f"bytes=0-{CHUNK_MULTIPLE - 1}")
    sandbox.add_faults(FaultRule(route="gcsPut", drop=True, drop_after=CHUNK_MULTIPLE + 10))
    with pytest.raises(httpx2.TransportError):
        httpx2.put(
            session,
            content=data[CHUNK_MULTIPLE : CHUNK_MULTIPLE + chunk],
            headers={"Content-Range": f"bytes {CHUNK_MULTIPLE}-{CHUNK_MULTIPLE + chunk - 1}/*"},
        )
    status = httpx2.put(session, headers={"Content-Range": "bytes */*"})
    assert status.headers["Range"] == f"bytes=0-{chunk - 1}"
    (stats,) = sandbox.upload_stats(slot["id"])
    assert stats == {
        "persisted": chunk,
        "received": chunk + CHUNK_MULTIPLE + 10,
        "resent": 0,
        "done": False,
        "cancelled": False,
    }
    with pytest.raises(ValueError, match="gcsPut only"):
        FaultRule(route="getAudience", ack_bytes=1)


def test_size_counts_people_not_identifiers() -> None:
    """Spotify's size counts people: two identifiers of one person are one person."""
    emails = [f"EMAIL_ID_SHA256,{sha(f'u{i}@example.com')}\n" for i in range(1500)]
    phones = [f"PHONE_NUMBER_SHA256,{sha(f'+1201555{i:04d}')}\n" for i in range(1000)]
    both = parse_membership(("type,value\n" + "".join(emails + phones)).encode())
    assert both.well_formed == 2500
    assert both.people == 1500  # the largest type: everyone has an email
    assert size_range(both.people) == {"min": 900, "max": 1200}
    header = "EMAIL_ID_SHA256,PHONE_NUMBER_SHA256\n"
    rows = [f"{sha(f'u{i}@example.com')},{sha(f'+1201555{i:04d}')}\n" for i in range(1200)]
    wide = parse_membership((header + "".join(rows) + ",\n").encode())
    assert wide.well_formed == 2400
    assert wide.people == 1200  # one row, one person


def test_a_large_file_is_counted_off_the_request_path(api, monkeypatch) -> None:
    """Processing a large file happens on the emulator's own thread: status reads answer at
    once and say PROCESSING until the count is done, then settle (never half-counted)."""
    import threading

    from spotify_audience_sync.sandbox import membership

    release = threading.Event()
    counting = membership._count_type_value

    def slow_count(data: bytes) -> tuple[int, int]:
        assert release.wait(10)
        return counting(data)

    monkeypatch.setattr(membership, "BACKGROUND_BYTES", 1024)
    monkeypatch.setattr(membership, "_count_type_value", slow_count)
    rows = "".join(f"EMAIL_ID_SHA256,{sha(f'u{i}@example.com')}\n" for i in range(1200))
    created = api.audience_from(("type,value\n" + rows).encode())
    started = time.monotonic()
    for _ in range(3):
        assert api("GET", f"/{created['id']}").json()["status"] == "PROCESSING"
    assert time.monotonic() - started < 2  # answered while the count is held back
    release.set()
    settled = api.settle(created["id"])
    assert settled["status"] == "BOOKABLE"
    assert settled["size"] == size_range(1200)


def test_a_large_file_that_is_not_utf8_after_its_header_counts_nothing(monkeypatch) -> None:
    """Only the header is decoded in GCS's final answer; the count finds the bad bytes."""
    from spotify_audience_sync.sandbox import membership

    monkeypatch.setattr(membership, "BACKGROUND_BYTES", 64)
    rows = "".join(f"EMAIL_ID_SHA256,{sha(f'u{i}@example.com')}\n" for i in range(5))
    for header in (b"type,value\n", b"EMAIL_ID_SHA256\n"):
        members = membership.parse_membership(header + rows.encode() + b"\xff\xfe,\n")
        members.wait()
        assert members.well_formed == 0
        assert members.rows == ()
