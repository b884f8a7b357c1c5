"""Inputs by URL: an HTTP server in this test and a real S3-compatible server (moto's, from PyPI)
started on 127.0.0.1; the file read by URL must prepare to the same bytes as read from disk."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import InputError, InputNotFoundError, TransientError
from spotify_audience_sync.segment.sources import detect_format, open_source

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "segment.csv"
SIGNATURE = "X-Goog-Signature=deadbeefcafe"


def prepare(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["prepare", *args])
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "out.csv"
    code, stderr = prepare(str(FIXTURE), "-o", str(out), "-q")
    assert code == 0, stderr
    return out.read_bytes()


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves FIXTURE as /segment.csv and /segment.csv.gz; /flaky fails with 503 twice first."""

    fails_left = 2
    seen: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        _Files.seen.append(self.path)
        path = self.path.split("?", 1)[0]
        body = FIXTURE.read_bytes()
        if path == "/flaky.csv" and _Files.fails_left > 0:
            _Files.fails_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        if path == "/segment.csv.gz":
            body = gzip.compress(body)
        elif path == "/expired.csv":
            self.send_response(403)
            self.end_headers()
            return
        elif path not in ("/segment.csv", "/flaky.csv"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/segment.csv", "/segment.csv.gz"])
def test_an_http_url_prepares_like_the_file_and_never_prints_its_signature(
    http_base: str, path: str, expected: bytes, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    url = f"{http_base}{path}?{SIGNATURE}"
    code, stderr = prepare(url, "-o", str(out), "--report", str(tmp_path / "r.json"))
    assert code == 0, stderr
    assert out.read_bytes() == expected
    assert "deadbeef" not in stderr
    assert "deadbeef" not in (tmp_path / "r.json").read_text()
    assert json.loads((tmp_path / "r.json").read_text())["input"] == f"{http_base}{path}?…"


def test_http_errors_are_typed_and_5xx_is_retried(http_base: str) -> None:
    with pytest.raises(InputNotFoundError, match=r"/missing\.csv\?…: not found \(HTTP 404\)$"):
        open_source(f"{http_base}/missing.csv?{SIGNATURE}")
    with pytest.raises(InputError, match=r"access denied \(HTTP 403\); is the signed URL expired"):
        open_source(f"{http_base}/expired.csv")
    _Files.fails_left = 2
    with open_source(f"{http_base}/flaky.csv") as source:  # 503, 503, then 200
        assert "email" in [c.lower() for c in source.columns]


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="cannot be downloaded"):
        open_source(f"http://127.0.0.1:{port}/segment.csv?{SIGNATURE}")


def test_the_format_comes_from_the_url_path_not_its_query() -> None:
    assert detect_format("https://h/x/people.tsv.gz?sig=a.csv") == "tsv"
    assert detect_format("s3://bucket/exports/people.ndjson") == "ndjson"


# --- S3 (moto's server) -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, a bucket holding the fixture; its endpoint."""
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(endpoint, timeout=1)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        client.create_bucket(Bucket="cdp-drop")
        client.put_object(
            Bucket="cdp-drop",
            Key="exports/segment.csv.gz",
            Body=gzip.compress(FIXTURE.read_bytes()),
        )
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        yield endpoint
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_s3_object_prepares_like_the_file(s3: str, expected: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    code, stderr = prepare("s3://cdp-drop/exports/segment.csv.gz", "-o", str(out))
    assert code == 0, stderr
    assert out.read_bytes() == expected


def test_a_missing_s3_object_is_exit_66(s3: str) -> None:
    code, stderr = prepare("s3://cdp-drop/exports/nothing.csv", "-o", "-")
    assert code == 66
    assert "s3://cdp-drop/exports/nothing.csv: no such object" in stderr
