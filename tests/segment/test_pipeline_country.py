"""prepare with a country column: phones read with their row's country, counted in the report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source

ROWS = """email,phone,Country
a@example.com,020 7946 0018,United Kingdom
b@example.com,030 901820,DEU
c@example.com,01 42 68 53 00,+33
d@example.com,(212) 555-0123,
e@example.com,+49 30 901820,Atlantis
f@example.com,030 901820,Atlantis
"""


def _prepare(path: Path, country: str | None) -> tuple[set[bytes], dict]:
    options = PrepareOptions(
        columns={IdentifierType.EMAIL: "email", IdentifierType.PHONE: "phone"},
        normalize=NormalizeOptions(default_region="US", country_column=country),
    )
    with open_source(str(path)) as source, prepare_segment(source, options) as prepared:
        data = b"".join(prepared.chunks())
        summary = prepared.report.summary()
        assert ("read with their row's country" in summary) == (country is not None)
        return set(data.splitlines()[1:]), prepared.report.to_dict()


def _row(e164: str) -> bytes:
    return b"PHONE_NUMBER_SHA256," + hashlib.sha256(e164.encode()).hexdigest().encode()


def test_phones_use_their_rows_country_and_the_report_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(ROWS, encoding="utf-8")
    rows, report = _prepare(path, "Country")
    for e164 in ("+442079460018", "+4930901820", "+33142685300", "+12125550123"):
        assert _row(e164) in rows
    phone = report["identifiers"]["phone"]
    assert phone["hashed"] == 5  # the last row: a German number read as a US one
    assert phone["row_country"] == 3  # GB, DE, FR; the blank row and the + number do not count
    assert phone["country_unknown"] == 2
    assert report["options"]["country_column"] == "Country"
    [warning] = [w for w in report["warnings"] if "country" in w]
    assert (
        warning == "2 country values named no country we know; their phones were read as US numbers"
    )
    assert "Atlantis" not in str(report)
    with open_source(str(path)) as source:
        options = PrepareOptions(normalize=NormalizeOptions(country_column="Country"))
        with prepare_segment(source, options) as prepared:
            summary = prepared.report.summary()
    assert (
        "  " + " " * 11 + "3 phones read with their row's country (2 unknown country values)"
        in summary
    )
    assert "Atlantis" not in summary

    without, plain = _prepare(path, None)
    assert plain["identifiers"]["phone"]["hashed"] == 2  # US and the + number only
    assert "row_country" not in plain["identifiers"]["phone"]
    assert without < rows


def test_a_missing_country_column_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(ROWS, encoding="utf-8")
    with pytest.raises(InputError, match="no country column 'Land'"):
        _prepare(path, "Land")
