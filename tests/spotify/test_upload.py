"""The resumable uploader: against the sandbox (thread and process) and a fake GCS for edges.

Payloads are hashed ``type,value`` rows only. Sleeps are injected, so nothing really waits.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import google_crc32c
import httpx2
import pytest

from conftest import SandboxProcess
from spotify_audience_sync.errors import (
    ConfigError,
    InputError,
    RemoteError,
    SafetyError,
    StoppedError,
    TransientError,
)
from spotify_audience_sync.sandbox import FaultRule, Sandbox
from spotify_audience_sync.sandbox.membership import parse_membership
from spotify_audience_sync.spotify.upload import UploadResult, upload_file

KIB256 = 256 * 1024
CHUNK = 2 * KIB256
ROW = 81  # len("EMAIL_ID_SHA256,<64 hex>\n")


def pieces(data: bytes, seed: int = 7, largest: int = 70_000) -> Iterator[bytes]:
    """The file in pieces of arbitrary sizes, as an encoder would yield them."""
    rng, offset = random.Random(seed), 0
    while offset < len(data):
        size = rng.randint(1, largest)
        yield data[offset : offset + size]
        offset += size


def sized(make_csv: Callable[[int], bytes], size: int) -> bytes:
    """A hashed-rows file of exactly ``size`` bytes (blank lines pad; readers skip them)."""
    data = make_csv((size - 11) // ROW)
    return data + b"\n" * (size - len(data))


def digest(data: bytes | bytearray) -> str:
    """Compare payloads by digest, so a failure never prints them."""
    return hashlib.sha256(data).hexdigest()


def new_slot(sandbox: Sandbox) -> tuple[str, str]:
    slot = sandbox.audiences.new_upload(sandbox.ad_account_id, sandbox.base_url)
    return slot["id"], slot["upload_url"]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def stored_rows(sandbox: Sandbox, upload_id: str) -> tuple[tuple[str, str], ...]:
    slot = sandbox.audiences.slot(upload_id)
    assert slot is not None
    assert slot.membership is not None, "the upload did not complete an object"
    return slot.membership.rows


# --- against the in-thread sandbox -----------------------------------------------------------
@pytest.mark.parametrize("known", [True, False], ids=["known-size", "unknown-size"])
@pytest.mark.parametrize(
    "size",
    [
        pytest.param(5_000, id="smaller-than-a-chunk"),
        pytest.param(CHUNK, id="one-exact-chunk"),
        pytest.param(3 * CHUNK, id="three-exact-chunks"),
        pytest.param(3 * CHUNK + 12_345, id="chunks-and-a-tail"),
    ],
)
def test_upload_stores_exactly_the_bytes_sent(sandbox, make_csv, sleeps, known, size) -> None:
    data = sized(make_csv, size)
    assert len(data) == size
    upload_id, url = new_slot(sandbox)
    progress: list[int] = []
    result = upload_file(
        url,
        pieces(data),
        total_bytes=len(data) if known else None,
        chunk_size=CHUNK,
        sleep=sleeps,
        on_progress=progress.append,
    )
    chunks = -(-size // CHUNK)
    assert result == UploadResult(size, 1 + chunks, 0, 0, result.seconds)
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows
    assert sandbox.upload_stats(upload_id) == [
        {"persisted": size, "received": size, "resent": 0, "done": True, "cancelled": False}
    ]
    assert progress[-1] == size
    assert sleeps == []


def test_the_stream_is_read_lazily(sandbox, make_csv) -> None:
    data = make_csv(40_000)  # ~3.2 MB, 13 chunks of 256 KiB
    consumed = 0

    def stream() -> Iterator[bytes]:
        nonlocal consumed
        for piece in pieces(data, largest=50_000):
            consumed += len(piece)
            yield piece

    held: list[int] = []
    _, url = new_slot(sandbox)
    upload_file(url, stream(), chunk_size=KIB256, on_progress=lambda n: held.append(consumed - n))
    assert len(held) == 13
    assert max(held) <= KIB256 + 50_000  # one chunk of look-ahead and one piece, never more


def test_a_503_on_a_chunk_is_resumed_without_resending(sandbox, make_csv, sleeps) -> None:
    data = make_csv(10_000)
    upload_id, url = new_slot(sandbox)
    sandbox.add_faults(FaultRule(route="gcsPut", status=503))
    result = upload_file(url, pieces(data), chunk_size=CHUNK, sleep=sleeps)
    assert result.resumes == 1
    assert len(sleeps) == 1
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows
    assert sandbox.upload_stats(upload_id)[0]["resent"] == 0


def test_a_dropped_connection_mid_chunk_resends_only_what_gcs_lacks(
    sandbox, make_csv, sleeps
) -> None:
    data = make_csv(20_000)  # ~1.6 MB: chunks at 0, 512 KiB, 1 MiB, 1.5 MiB
    size = len(data)
    upload_id, url = new_slot(sandbox)
    arrived = 300_000  # of the second chunk; GCS keeps the first 256 KiB of them

    def drop_the_second_chunk(acked: int) -> None:
        if acked == CHUNK:
            sandbox.add_faults(FaultRule(route="gcsPut", drop=True, drop_after=arrived))

    result = upload_file(
        url, pieces(data), chunk_size=CHUNK, sleep=sleeps, on_progress=drop_the_second_chunk
    )
    stats = sandbox.upload_stats(upload_id)[0]
    assert stats["resent"] == 0  # no byte GCS held was sent again
    assert stats["received"] == size + arrived - KIB256
    assert result.resumes == 1
    assert result.bytes_resent == CHUNK - KIB256  # only the unacknowledged half of the chunk
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows


def test_a_lost_answer_to_the_final_chunk_finds_the_object_complete(
    sandbox, make_csv, sleeps
) -> None:
    data = make_csv(10_000)  # two chunks
    upload_id, url = new_slot(sandbox)

    def lose_the_final_answer(acked: int) -> None:
        if acked == CHUNK:
            sandbox.add_faults(FaultRule(route="gcsPut", drop=True, when="after"))

    result = upload_file(
        url, pieces(data), chunk_size=CHUNK, sleep=sleeps, on_progress=lose_the_final_answer
    )
    assert (result.resumes, result.requests) == (1, 4)  # start, two chunks, one status query
    assert sandbox.upload_stats(upload_id)[0]["resent"] == 0
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows


def test_an_empty_stream_completes_an_empty_object(sandbox) -> None:
    upload_id, url = new_slot(sandbox)
    result = upload_file(url, iter([b""]))
    assert (result.bytes_sent, result.requests) == (0, 2)
    assert stored_rows(sandbox, upload_id) == ()


@pytest.mark.parametrize("known", [True, False], ids=["known-size", "unknown-size"])
def test_a_partial_acknowledgement_resends_only_the_tail(sandbox, make_csv, sleeps, known) -> None:
    """Also with the size unknown, as a sync's streamed upload sends it."""
    data = make_csv(10_000)
    upload_id, url = new_slot(sandbox)
    sandbox.add_faults(FaultRule(route="gcsPut", ack_bytes=KIB256))
    total = len(data) if known else None
    result = upload_file(url, pieces(data), total_bytes=total, chunk_size=CHUNK, sleep=sleeps)
    assert result.resumes == 0
    assert result.bytes_resent == CHUNK - KIB256
    assert sandbox.upload_stats(upload_id)[0]["resent"] == 0
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows
    assert sleeps == []


def test_a_429_storm_honours_retry_after(sandbox, make_csv, sleeps) -> None:
    data = make_csv(5_000)
    upload_id, url = new_slot(sandbox)
    sandbox.add_faults(FaultRule(route="gcsPut", status=429, count=4, retry_after=7))
    result = upload_file(url, pieces(data), chunk_size=CHUNK, sleep=sleeps)
    assert sleeps == [7, 7, 7, 7]
    assert result.resumes == 1
    assert stored_rows(sandbox, upload_id) == parse_membership(data).rows


def test_an_authorization_header_on_the_client_never_reaches_gcs(sandbox, make_csv) -> None:
    upload_id, url = new_slot(sandbox)
    headers = {"Authorization": "Bearer spotify-token", "X-Spotify-Trace": "t"}
    with httpx2.Client(headers=headers) as client:
        upload_file(url, [make_csv(100)], client=client)  # the sandbox would answer 403
    assert stored_rows(sandbox, upload_id)


def test_a_bad_signature_is_a_remote_error_without_the_url(sandbox, make_csv) -> None:
    _, url = new_slot(sandbox)
    signature = re.search(r"X-Goog-Signature=(\w+)", url)[1]
    forged = url.replace(signature, "0" * len(signature))
    with pytest.raises(RemoteError) as caught:
        upload_file(forged, [make_csv(10)])
    assert caught.value.status == 403
    assert caught.value.codes == ("SignatureDoesNotMatch",)
    for secret in ("X-Goog-Signature", "0" * len(signature), "?", "sandbox-audiences"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize("refusal", [SafetyError("too few identifiers"), KeyboardInterrupt()])
def test_a_refusal_before_finalize_cancels_the_session(sandbox, make_csv, refusal) -> None:
    data = make_csv(10_000)
    size = len(data)
    upload_id, url = new_slot(sandbox)
    seen: list[int] = []

    def guard(total: int) -> None:
        seen.append(total)
        raise refusal

    with pytest.raises(type(refusal)):
        upload_file(url, pieces(data), chunk_size=CHUNK, before_finalize=guard)
    assert seen == [size]
    assert sandbox.audiences.slot(upload_id).membership is None  # no object completed
    (stats,) = sandbox.upload_stats(upload_id)
    assert stats["cancelled"] is True
    assert stats["done"] is False
    assert stats["persisted"] == size // CHUNK * CHUNK  # the final chunk was never sent


def test_a_stream_that_disagrees_with_its_declared_size_is_cancelled(sandbox, make_csv) -> None:
    data = make_csv(10_000)
    upload_id, url = new_slot(sandbox)
    with pytest.raises(InputError, match="fewer"):
        upload_file(url, pieces(data), total_bytes=len(data) + 1, chunk_size=CHUNK)
    assert sandbox.upload_stats(upload_id)[0]["cancelled"] is True


def test_a_checkpoint_that_raises_ends_the_upload_and_cancels_its_session(
    sandbox, make_csv
) -> None:
    """How a plan's stop (sync/stop.py) reaches an upload on a worker thread: ``checkpoint``
    raises before the next request, and GCS keeps no session open."""
    data = make_csv(10_000)
    upload_id, url = new_slot(sandbox)
    stopped: list[int] = []

    def checkpoint() -> None:
        if stopped:
            raise StoppedError("terminated (SIGTERM) before this sync finished")

    with pytest.raises(StoppedError):
        upload_file(
            url, pieces(data), chunk_size=CHUNK, on_progress=stopped.append, checkpoint=checkpoint
        )
    assert stopped == [CHUNK]  # SIGTERM came during the first chunk
    (stats,) = sandbox.upload_stats(upload_id)
    assert stats["cancelled"] is True
    assert stats["done"] is False
    assert stats["persisted"] == CHUNK  # nothing sent after the stop


# --- against the sandbox process -------------------------------------------------------------
def test_faults_against_the_sandbox_process(sandbox_app: SandboxProcess, make_csv) -> None:
    token = sandbox_app.admin("POST", "/tokens")["access_token"]
    ads = f"{sandbox_app.api_base_url}/ad_accounts/{sandbox_app.ad_account_id}/audiences"
    bearer = {"Authorization": f"Bearer {token}"}
    slot = httpx2.post(f"{ads}/upload_url", headers=bearer).json()
    sandbox_app.admin("POST", "/faults", json={"faults": [{"route": "gcsPut", "status": 503}]})
    later = [
        {"route": "gcsPut", "drop": True},  # half of the second chunk arrives, then a hang-up
        {"route": "gcsPut", "status": 429, "retry_after": 3},  # on the status query after it
    ]

    def after_the_first_chunk(acked: int) -> None:
        if acked == CHUNK:
            sandbox_app.admin("POST", "/faults", json={"faults": later})

    data = make_csv(20_000)
    size, sleeps = len(data), Sleeps()
    result = upload_file(
        slot["upload_url"],
        pieces(data),
        chunk_size=CHUNK,
        sleep=sleeps,
        on_progress=after_the_first_chunk,
    )
    assert result.resumes == 2
    assert sleeps[-1] == 3
    (stats,) = sandbox_app.admin("GET", f"/uploads/{slot['id']}")["sessions"]
    assert stats["resent"] == 0  # no byte GCS held was sent again
    assert stats["received"] == size  # the hang-up came on a 256 KiB boundary: all kept
    body = {"audience_type": "CUSTOM", "subtype": "CUSTOMER_LIST", "name": "upload test"}
    created = httpx2.post(ads, headers=bearer, json={**body, "audience_id": slot["id"]})
    assert created.status_code == 201, created.text
    members = sandbox_app.admin("GET", f"/audiences/{slot['id']}/membership")
    assert [(r["type"], r["value"]) for r in members["rows"]] == list(parse_membership(data).rows)


# --- against a fake GCS (MockTransport) ------------------------------------------------------
URL = "https://storage.example/bucket/upload.csv?X-Goog-Signature=c2VjcmV0c2lnbmF0dXJl"
RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")


class FakeGcs:
    """A small GCS resumable endpoint; ``faults`` answer (or raise for) the next PUTs."""

    def __init__(self, *, location: bool = True, crc: str | None = None) -> None:
        self.location, self.crc = location, crc
        self.data = bytearray()
        self.requests: list[httpx2.Request] = []
        self.faults: list[Any] = []
        self.cancelled = False
        self.final: httpx2.Response | None = None

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if "authorization" in request.headers:
            return httpx2.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")
        if request.method == "POST":
            headers = {"Location": URL + "&upload_id=s1"} if self.location else {}
            return httpx2.Response(201 if self.location else 200, headers=headers)
        if request.method == "DELETE":
            self.cancelled = True
            return httpx2.Response(499)
        if self.faults:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return httpx2.Response(fault[0], headers=fault[1], text=fault[2])
        if self.final is not None:  # a completed session answers every PUT with the object
            return self.final
        first, last, total = RANGE.fullmatch(request.headers["content-range"]).groups()
        if first is not None:
            self.data[int(first) :] = request.content
            assert int(last) + 1 == len(self.data)
        if total != "*" and int(total) == len(self.data):
            crc = google_crc32c.value(bytes(self.data)).to_bytes(4, "big")
            digest = self.crc or base64.b64encode(crc).decode()
            self.final = httpx2.Response(200, headers={"x-goog-hash": f"crc32c={digest},md5=eA=="})
            return self.final
        headers = {"Range": f"bytes=0-{len(self.data) - 1}"} if self.data else {}
        return httpx2.Response(308, headers=headers)

    def puts(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.method == "PUT"]


def fake_upload(fake: FakeGcs, data: bytes, **kwargs: Any) -> UploadResult:
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("chunk_size", KIB256)
    return upload_file(URL, pieces(data), transport=httpx2.MockTransport(fake), **kwargs)


@pytest.mark.parametrize("known", [True, False], ids=["known-size", "unknown-size"])
def test_request_shapes(make_csv, known) -> None:
    fake, data = FakeGcs(), sized(make_csv, 3 * KIB256)
    fake_upload(fake, data, total_bytes=len(data) if known else None)
    start, *puts = fake.requests
    assert (start.method, start.content, start.headers["x-goog-resumable"]) == (
        "POST",
        b"",
        "start",
    )
    assert start.headers["content-type"] == "text/csv"
    assert [r.headers["content-range"] for r in puts] == [
        f"bytes 0-{KIB256 - 1}/{len(data) if known else '*'}",
        f"bytes {KIB256}-{2 * KIB256 - 1}/{len(data) if known else '*'}",
        f"bytes {2 * KIB256}-{len(data) - 1}/{len(data)}",  # the last one carries the total
    ]
    assert all("x-goog-resumable" not in r.headers for r in puts)
    for request in fake.requests:
        assert "authorization" not in request.headers
        assert request.extensions["timeout"] == httpx2.Timeout(120.0).as_dict()
    assert digest(fake.data) == digest(data)


def test_the_timeout_is_set_even_on_a_callers_client(make_csv) -> None:
    fake = FakeGcs()
    with httpx2.Client(transport=httpx2.MockTransport(fake), timeout=5) as client:
        upload_file(URL, [make_csv(10)], client=client)
    assert {r.extensions["timeout"]["read"] for r in fake.requests} == {120.0}


def test_timeouts_and_dropped_connections_are_resumed(make_csv) -> None:
    fake, data, sleeps = FakeGcs(), make_csv(10_000), Sleeps()
    fake.faults = [httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("gone")]
    result = fake_upload(fake, data, sleep=sleeps)
    assert result.resumes == 1  # the status query itself failed once, then answered
    assert len(sleeps) == 2
    assert all(0.5 <= s <= 2 for s in sleeps)  # 1 s then 2 s caps, with jitter
    assert digest(fake.data) == digest(data)


def test_too_many_failures_is_a_transient_error(make_csv) -> None:
    fake, sleeps = FakeGcs(), Sleeps()
    fake.faults = [(503, {}, "")] * 10
    with pytest.raises(TransientError) as caught:
        fake_upload(fake, make_csv(5_000), max_attempts=3, sleep=sleeps)
    message = str(caught.value)
    assert "3 times" in message
    assert "GCS holds 0 of" in message
    assert "storage.example" not in message
    assert "Signature" not in message
    assert len(sleeps) == 2
    assert fake.cancelled


def test_a_long_retry_after_fails_instead_of_hanging(make_csv) -> None:
    fake = FakeGcs()
    fake.faults = [(429, {"Retry-After": "3600"}, "")]
    with pytest.raises(TransientError, match="asked to wait 3600 s"):
        fake_upload(fake, make_csv(10))


def test_initiation_without_location_stops_at_once(make_csv) -> None:
    fake = FakeGcs(location=False)
    with pytest.raises(RemoteError, match="no session started; nothing uploaded"):
        fake_upload(fake, make_csv(10))
    assert len(fake.requests) == 1


def test_an_expired_session_is_a_remote_error(make_csv) -> None:
    fake = FakeGcs()
    fake.faults = [(404, {}, "<Error><Code>NoSuchUpload</Code></Error>")]
    with pytest.raises(RemoteError, match="session expired") as caught:
        fake_upload(fake, make_csv(10))
    assert caught.value.status == 404
    assert caught.value.codes == ("NoSuchUpload",)


def test_a_crc_mismatch_is_a_remote_error(make_csv) -> None:
    fake = FakeGcs(crc="AAAAAA==")
    with pytest.raises(RemoteError, match="integrity") as caught:
        fake_upload(fake, make_csv(5_000))
    assert caught.value.codes == ("CRC32C_MISMATCH",)


def test_a_lost_final_answer_is_found_complete_by_the_status_query(make_csv) -> None:
    fake, data = FakeGcs(), make_csv(5_000)
    size = len(data)
    answer = fake.__call__

    def lose_the_final_answer(request: httpx2.Request) -> httpx2.Response:
        response = answer(request)
        if response.status_code == 200 and len(fake.puts()) == 2:
            raise httpx2.ReadError("connection reset")
        return response

    result = upload_file(
        URL,
        pieces(data),
        transport=httpx2.MockTransport(lose_the_final_answer),
        chunk_size=KIB256,
        sleep=Sleeps(),
    )
    assert result.resumes == 1
    assert result.bytes_sent == size
    assert fake.puts()[-1].headers["content-range"] == "bytes */*"
    assert not fake.cancelled


@pytest.mark.parametrize("size", [0, 100_000, KIB256 + 1])
def test_chunk_size_must_be_a_multiple_of_256_kib(size) -> None:
    def never(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("no request expected")

    with pytest.raises(ConfigError, match="--chunk-size / SPOTIFY_ADS_UPLOAD_CHUNK_SIZE"):
        upload_file(URL, [b""], chunk_size=size, transport=httpx2.MockTransport(never))
