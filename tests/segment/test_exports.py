"""Exports as they come (issue 21): synthetic Shopify, HubSpot, Salesforce and German Excel files
(``scripts/make_export_fixtures.py``), each read as-is and checked against a row-by-row
reference that knows nothing of the pipeline."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.report import PrepareReport
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.segment.suppression import build_suppression

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = ROOT / "fixtures" / "exports"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
TYPES = {"email": "EMAIL_ID_SHA256", "phone": "PHONE_NUMBER_SHA256"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def reference(
    name: str,
    columns: dict[str, list[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    region: str = "US",
    keep: str | None = None,
) -> set[tuple[str, str]]:
    """The identifiers a file holds, the slow, obvious way: every listed column, every row."""
    rows: set[tuple[str, str]] = set()
    text = (EXPORTS / name).read_bytes().decode(encoding)
    for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter):
        if keep is not None and (row.get(keep) or "").strip().lower() not in ("yes", "1", "true"):
            continue
        for value in (row.get(c) or "" for c in columns.get("email", [])):
            email = value.strip().lower()
            if EMAIL_RE.match(email):
                rows.add((TYPES["email"], _sha(email)))
        for value in (row.get(c) or "" for c in columns.get("phone", [])):
            if not value.strip():
                continue
            try:
                number = phonenumbers.parse(value, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                rows.add((TYPES["phone"], _sha(e164)))
    return rows


def prepare(name: str, **kw: object) -> tuple[set[tuple[str, str]], PrepareReport, list[str]]:
    encoding = kw.pop("encoding", None)
    options = PrepareOptions(**kw)  # type: ignore[arg-type]
    with (
        open_source(str(EXPORTS / name), encoding=encoding) as source,  # type: ignore[arg-type]
        prepare_segment(source, options) as prepared,
    ):
        out = io.BytesIO()
        prepared.write_to(out)
        report = prepared.report
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == "type,value"
    got = {tuple(line.split(",")) for line in lines[1:]}
    assert len(got) == len(lines) - 1  # no duplicate rows
    return got, report, source.columns  # type: ignore[return-value]


def test_the_fixtures_are_what_the_script_writes() -> None:
    script = ROOT / "scripts" / "make_export_fixtures.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hubspot_reads_both_phone_columns() -> None:
    got, report, _ = prepare("hubspot_contacts.csv")
    want = reference(
        "hubspot_contacts.csv",
        {"email": ["Email"], "phone": ["Phone Number", "Mobile Phone Number"]},
    )
    assert got == want
    phone = report.identifiers["phone"]
    assert phone.column == "Phone Number + Mobile Phone Number"
    assert phone.columns is not None
    per_column = {name: c.hashed for name, c in phone.columns.items()}
    assert sum(per_column.values()) == phone.hashed
    only_mobile = reference("hubspot_contacts.csv", {"phone": ["Mobile Phone Number"]})
    assert len(only_mobile) < phone.written  # the landline column adds identifiers


def test_shopify_consent_column_keeps_only_accepting_rows() -> None:
    name, consent = "shopify_customers.csv", "Accepts Email Marketing"
    columns = {"email": ["Email"], "phone": ["Phone", "Default Address Phone"]}
    got, report, _ = prepare(name, consent_column=consent)
    assert got == reference(name, columns, keep=consent)
    with (EXPORTS / name).open(newline="") as f:
        refused = sum(row[consent] != "yes" for row in csv.DictReader(f))
    assert report.no_consent == refused > 0
    assert report.consent_column == consent
    assert f"{refused:,} rows without consent left out" in report.summary()


def test_salesforce_footer_lines_are_short_rows_and_warned() -> None:
    got, report, _ = prepare("salesforce_report.csv")
    assert got == reference(
        "salesforce_report.csv", {"email": ["Email"], "phone": ["Phone", "Mobile"]}
    )
    assert report.short_rows == 3  # a blank line and two footer lines
    assert any("3 of 203 rows have fewer fields" in w for w in report.warnings)


def test_german_excel_file_is_read_as_it_comes() -> None:
    """cp1252, ';', CRLF, German headers: sniffed and matched with no flag but the encoding."""
    got, report, columns = prepare(
        "kunden_excel.csv", encoding="cp1252", normalize=NormalizeOptions(default_region="DE")
    )
    assert columns == ["Kundennummer", "Anrede", "Vorname", "Nachname", "E-Mail", "Telefon", "Land"]
    want = reference(
        "kunden_excel.csv",
        {"email": ["E-Mail"], "phone": ["Telefon"]},
        encoding="cp1252",
        delimiter=";",
        region="DE",
    )
    assert got == want
    assert report.identifiers["email"].column == "E-Mail"
    assert report.identifiers["phone"].column == "Telefon"


def test_an_opt_out_list_removes_its_identifiers_before_upload() -> None:
    normalize = NormalizeOptions()
    with open_source(str(EXPORTS / "opt_outs.csv")) as source:
        suppression = build_suppression([source], normalize)
    try:
        got, report, _ = prepare("hubspot_contacts.csv", suppression=suppression)
    finally:
        suppression.close()
    columns = {"email": ["Email"], "phone": ["Phone Number", "Mobile Phone Number"]}
    opted_out = reference("opt_outs.csv", {"email": ["value"]})
    assert got == reference("hubspot_contacts.csv", columns) - opted_out
    assert report.identifiers["email"].suppressed == len(opted_out) == 20
    assert report.identifiers["phone"].suppressed == 0
    assert report.identifiers["email"].written == 200 - 20
    text = report.summary() + repr(report.to_dict())
    for line in (EXPORTS / "opt_outs.csv").read_text().splitlines()[1:]:
        assert line.split(",")[1] not in text  # never a value


def test_suppression_with_the_wide_layout_is_refused() -> None:
    with open_source(str(EXPORTS / "opt_outs.csv")) as source:
        suppression = build_suppression([source], NormalizeOptions())
    try:
        with pytest.raises(ConfigError, match="--exclude needs the type-value layout"):
            prepare("hubspot_contacts.csv", suppression=suppression, layout="wide")
    finally:
        suppression.close()


def test_explicit_columns_still_take_one_column_each() -> None:
    got, report, _ = prepare(
        "hubspot_contacts.csv", columns={IdentifierType.PHONE: "Mobile Phone Number"}
    )
    columns = {"email": ["Email"], "phone": ["Mobile Phone Number"]}
    assert got == reference("hubspot_contacts.csv", columns)
    assert report.identifiers["phone"].columns is None  # one column: no per-column counts
    assert "columns" not in report.to_dict()["identifiers"]["phone"]


@pytest.mark.parametrize("consent", [None, "Accepts Email Marketing"])
def test_one_audience_per_value_reads_every_column_too(consent: str | None) -> None:
    """--audience-column (and plans) read every phone column and honour consent."""
    from spotify_audience_sync.segment.split import Split, prepare_split

    name = "shopify_customers.csv"
    options = PrepareOptions(consent_column=consent)
    with open_source(str(EXPORTS / name)) as source:
        (groups,) = prepare_split(source, [Split(options, "Default Address Country Code")])
    assert list(groups) == ["US"]
    with groups["US"] as prepared:
        out = io.BytesIO()
        prepared.write_to(out)
        report = prepared.report
    got = {tuple(line.split(",")) for line in out.getvalue().decode().splitlines()[1:]}
    columns = {"email": ["Email"], "phone": ["Phone", "Default Address Phone"]}
    assert got == reference(name, columns, keep=consent)
    phone = report.identifiers["phone"]
    assert phone.columns is not None
    assert sum(c.hashed for c in phone.columns.values()) == phone.hashed > 0
