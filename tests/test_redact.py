"""The one redaction module: what it shows of secrets, and that it is light enough for every
layer (opening a state store must not load polars to mask its URL)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spotify_audience_sync.redact import mask_url, redact_url, scrubber


def test_a_state_url_is_masked_without_loading_polars() -> None:
    code = (
        "import sys\n"
        "from spotify_audience_sync.sync.backend import redact\n"
        "print(redact('postgresql://u:hunter2@h/db'))\n"
        "print('polars' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["postgresql://u:***@h/db", "False"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/b/f.csv?X-Amz-Signature=abc", "https://h/b/f.csv?…"),
        ("https://user:pw@h/f.csv", "https://h/f.csv"),
        ("s3://bucket/key.csv.gz", "s3://bucket/key.csv.gz"),
    ],
)
def test_mask_url_drops_signatures_and_userinfo(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_scrubber_removes_the_password_however_quoted() -> None:
    scrub = scrubber("mysql://me:p%40ss@h/db")
    assert scrub("failed for me:p@ss and p%40ss") == "failed for me:*** and ***"
    assert redact_url("mysql://me:p%40ss@h/db") == "mysql://me:***@h/db"


def test_http_request_logs_show_the_host_only(caplog: pytest.LogCaptureFixture) -> None:
    """httpx2 logs each request's URL at INFO: a signed URL or a webhook must not show whole."""
    import logging

    import httpx2

    from spotify_audience_sync.redact import guard_http_logs

    guard_http_logs()
    guard_http_logs()  # once is enough, twice is harmless
    url = httpx2.URL("https://storage.googleapis.com/bucket/f.csv?X-Goog-Signature=c0ffee")
    hook = "https://hooks.slack.com/services/T000/B000/webhook-secret-part"
    with caplog.at_level(logging.INFO, logger="httpx2"):
        logging.getLogger("httpx2").info('HTTP Request: %s %s "%s"', "PUT", url, "HTTP/1.1")
        logging.getLogger("httpx2").info("HTTP Request: %s %s", "POST", hook)
    assert "https://storage.googleapis.com/…" in caplog.text
    assert "c0ffee" not in caplog.text
    assert "bucket" not in caplog.text
    assert "webhook-secret-part" not in caplog.text
    assert len(logging.getLogger("httpx2").filters) == 1
