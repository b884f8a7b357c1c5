"""Consent values, pre-hashed columns (``not_a_hash``) and the wide layout with several columns."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import polars as pl
import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.consent import AFFIRMATIVE, consented
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.report import PrepareReport
from spotify_audience_sync.segment.sources import open_source


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _run(path: Path, **kw: object) -> tuple[list[str], PrepareReport]:
    options = PrepareOptions(**kw)  # type: ignore[arg-type]
    with open_source(str(path)) as source, prepare_segment(source, options) as prepared:
        out = io.BytesIO()
        prepared.write_to(out)
        return out.getvalue().decode().splitlines(), prepared.report


def test_affirmative_values_in_any_case() -> None:
    values = [*AFFIRMATIVE, "YES", " True ", "Opted_In", "OPT-IN", "Granted"]
    negative = ["no", "n", "false", "0", "", None, "unsubscribed", "opted_out", "maybe", "2"]
    assert consented(pl.Series(values, dtype=pl.String)).all()
    assert not consented(pl.Series(negative, dtype=pl.String)).any()


def test_rows_without_consent_contribute_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "email,phone,optin\n"
        "a@example.com,+1 201 555 0101,yes\n"
        "b@example.com,+1 201 555 0102,no\n"
        "c@example.com,+1 201 555 0103,\n"
        "d@example.com,+1 201 555 0104,Subscribed\n",
        "utf-8",
    )
    lines, report = _run(src, consent_column="optin")
    assert sorted(lines[1:]) == sorted(
        [f"EMAIL_ID_SHA256,{_sha(e)}" for e in ("a@example.com", "d@example.com")]
        + [f"PHONE_NUMBER_SHA256,{_sha(p)}" for p in ("+12015550101", "+12015550104")]
    )
    assert (report.rows_read, report.no_consent, report.rows_with_identifier) == (4, 2, 2)


def test_an_unknown_consent_column_is_an_input_error(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email\na@example.com\n", "utf-8")
    with pytest.raises(InputError, match=r"no column 'optin' \(--consent-column\)"):
        _run(src, consent_column="optin")


def test_a_digest_column_rejects_what_is_not_a_digest(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    digest = _sha("a@example.com")
    src.write_text(
        f"EMAIL_SHA256\n{digest.upper()}\nb@example.com\n\nnot-hex\n{digest[:60]}\n", "utf-8"
    )
    lines, report = _run(src)
    assert lines[1:] == [f"EMAIL_ID_SHA256,{digest}"]
    email = report.identifiers["email"]
    assert email.prehashed == 1
    assert email.hashed == 0
    assert email.rejected["not_a_hash"] == 3  # a raw address, garbage, a short digest
    assert email.rejected["empty"] == 1


def test_wide_layout_with_two_phone_columns(tmp_path: Path) -> None:
    """First values share a row; a second phone gets a row of its own; a repeat is written once."""
    src = tmp_path / "in.csv"
    src.write_text(
        "email,Phone,Mobile\n"
        "a@example.com,+1 201 555 0101,+1 201 555 0102\n"
        "b@example.com,,+1 201 555 0103\n"
        "c@example.com,+1 201 555 0104,+1 201 555 0104\n",
        "utf-8",
    )
    lines, report = _run(src, layout="wide")
    a, b, c = (_sha(e) for e in ("a@example.com", "b@example.com", "c@example.com"))
    p1, p2, p3, p4 = (_sha(f"+1201555010{i}") for i in range(1, 5))
    assert lines[0] == "EMAIL_ID_SHA256,PHONE_NUMBER_SHA256"
    assert sorted(lines[1:]) == sorted([f"{a},{p1}", f",{p2}", f"{b},{p3}", f"{c},{p4}"])
    assert report.identifiers["phone"].hashed == 5
