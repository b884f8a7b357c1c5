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
