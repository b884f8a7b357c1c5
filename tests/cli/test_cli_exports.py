"""The export flags of `prepare`: --delimiter, repeated column flags, --country-column,
--consent-column, --exclude, and the advice when no identifier column is found."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main

EXPORTS = Path(__file__).resolve().parents[2] / "fixtures" / "exports"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["prepare", *args])
    return result.exit_code, result.stdout, result.stderr


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_the_german_excel_file_needs_only_its_encoding(tmp_path: Path) -> None:
    out, report = tmp_path / "out.csv", tmp_path / "r.json"
    args = [str(EXPORTS / "kunden_excel.csv"), "-o", str(out), "--report", str(report)]
    code, _, stderr = invoke(*args, "--encoding", "cp1252", "--log-format", "human")
    assert code == 0, stderr
    assert "columns: email from 'E-Mail', phone from 'Telefon', country from 'Land'" in stderr
    assert _report(report)["identifiers"]["email"]["written"] == 200


def test_the_no_identifier_advice_works_when_pasted(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("Kunden Nr;Kontakt Adresse\n1;a@example.com\n", "cp1252")
    code, _, stderr = invoke(str(src), "-o", str(out))
    assert code == 65
    assert "columns are 'Kunden Nr', 'Kontakt Adresse'" in stderr
    advice = stderr.split("e.g. ")[1].split(".")[0]
    flag, name = shlex.split(advice)
    assert (flag, name) == ("--email-column", "Kunden Nr")
    code, _, stderr = invoke(str(src), "-o", str(out), flag, "Kontakt Adresse")
    assert code == 0, stderr


def test_delimiter_flag_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("email|name;title\na@example.com|Doe;Dr\n", "utf-8")  # a tie: ';' wins
    code, _, stderr = invoke(str(src), "-o", str(out))
    assert code == 65
    assert "columns are 'email|name', 'title'" in stderr
    code, _, stderr = invoke(str(src), "-o", str(out), "--delimiter", "|")
    assert code == 0, stderr
    monkeypatch.setenv("SPOTIFY_ADS_DELIMITER", "pipe")
    code, _, stderr = invoke(str(src), "-o", str(out))
    assert code == 0, stderr
    code, _, stderr = invoke(str(src), "-o", str(out), "--delimiter", "ab")
    assert code == 2
    assert "--delimiter" in stderr
    assert "must be one character" in stderr


def test_repeated_column_flags_and_consent(tmp_path: Path) -> None:
    out, report = tmp_path / "out.csv", tmp_path / "r.json"
    code, stdout, stderr = invoke(
        str(EXPORTS / "hubspot_contacts.csv"),
        "-o", str(out), "--report", str(report), "--log-format", "json",
        "--phone-column", "Mobile Phone Number", "--phone-column", "Phone Number",
        "--consent-column", "Marketing contact status",
    )  # fmt: skip
    assert code == 0, stderr
    event = json.loads(stdout.splitlines()[0])
    assert event["columns"]["phone"] == ["Mobile Phone Number", "Phone Number"]
    data = _report(report)
    assert data["consent_column"] == "Marketing contact status"
    assert data["no_consent"] == data["rows_read"] == 200  # "Marketing contact" is not a yes
    assert data["rows_written"] == 0


def test_exclude_lists_are_counted_per_type_and_never_shown(tmp_path: Path) -> None:
    out, report = tmp_path / "out.csv", tmp_path / "r.json"
    opt_outs = EXPORTS / "opt_outs.csv"
    code, stdout, stderr = invoke(
        str(EXPORTS / "hubspot_contacts.csv"),
        "-o", str(out), "--report", str(report), "--exclude", str(opt_outs), "-v",
    )  # fmt: skip
    assert code == 0, stderr
    data = _report(report)
    assert data["identifiers"]["email"]["suppressed"] == 20
    assert data["identifiers"]["email"]["written"] == 180
    for line in opt_outs.read_text().splitlines()[1:]:
        assert line.split(",")[1] not in stdout + stderr + report.read_text()


def test_country_column_flag_is_checked(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    src = EXPORTS / "hubspot_contacts.csv"
    code, _, stderr = invoke(str(src), "-o", str(out), "--country-column", "Nation")
    assert code == 65
    assert "no column 'Nation' (--country-column)" in stderr
    code, _, stderr = invoke(
        str(src), "-o", str(out), "--country-column", "Record ID", "--log-format", "human"
    )
    assert code == 0
    assert "country from 'Record ID'" in stderr


def test_exclude_applies_to_every_audience_column_group(tmp_path: Path) -> None:
    """One read, one file per value: the suppression list takes its people out of each."""
    whole, groups = tmp_path / "whole.json", tmp_path / "groups.json"
    opt_outs = str(EXPORTS / "opt_outs.csv")
    src = str(EXPORTS / "hubspot_contacts.csv")
    code, _, stderr = invoke(src, "-o", str(tmp_path / "all.csv"), "--exclude", opt_outs,
                             "--report", str(whole))  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = invoke(
        src,
        "-o", str(tmp_path / "{value}.csv"),
        "--audience-column", "Marketing contact status",
        "--exclude", opt_outs,
        "--report", str(groups),
    )  # fmt: skip
    assert code == 0, stderr
    expected = {key: entry["suppressed"] for key, entry in _report(whole)["identifiers"].items()}
    assert sum(expected.values()) > 0
    per_group = _report(groups)["audiences"].values()
    got = {key: sum(g["identifiers"][key]["suppressed"] for g in per_group) for key in expected}
    assert got == expected


def test_exclude_query_reads_a_suppression_list_from_the_database(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    query = (
        "SELECT 'BEN.FISCHER0@example.com' AS email, '+1 415 555 0132' AS phone "
        "UNION ALL SELECT 'jonas.costa1@example.org', NULL"
    )
    code, stdout, stderr = invoke(
        str(EXPORTS / "hubspot_contacts.csv"),
        "-o", str(tmp_path / "out.csv"), "--report", str(report),
        "--exclude-query", query, "--database-url", "duckdb://",
    )  # fmt: skip
    assert code == 0, stderr
    identifiers = _report(report)["identifiers"]
    assert identifiers["email"]["suppressed"] == 2
    assert identifiers["phone"]["suppressed"] == 1  # row 1's mobile, 415.555.0132
    assert "fischer0" not in stdout + stderr


def test_a_consent_like_column_is_named_but_never_applied_by_guess(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, _, stderr = invoke(
        str(EXPORTS / "shopify_customers.csv"),
        "-o", str(tmp_path / "out.csv"), "--report", str(report), "--log-format", "human",
    )  # fmt: skip
    assert code == 0, stderr
    assert (
        "consent-like 'Accepts Email Marketing' not applied (--consent-column applies it)" in stderr
    )
    data = _report(report)
    assert (data["no_consent"], data["consent_column"], data["rows_read"]) == (0, None, 200)
