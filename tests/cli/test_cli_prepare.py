"""`prepare` from the command line: output, report, and one test per error with its exit code."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import count_leaks, raw_identifiers
from spotify_audience_sync.cli.main import main

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"


def invoke(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["prepare", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_prepare_writes_the_file_a_report_and_a_summary(tmp_path: Path) -> None:
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    code, stdout, stderr = invoke(
        str(FIXTURE), "-o", str(out), "--report", str(report), "--log-format", "human"
    )
    assert code == 0
    assert stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "type,value"
    data = json.loads(report.read_text())
    assert data["rows_read"] == 3000
    assert data["rows_written"] == len(lines) - 1
    assert data["bytes_written"] == out.stat().st_size
    assert set(data["identifiers"]) == {"email", "phone", "device_id"}
    assert data["identifiers"]["email"]["column"] == "Email"
    # Phones libphonenumber decided itself are counted (none here: the C path decides the
    # fixture's "n/a" cells itself); other types carry no such count.
    phone = data["identifiers"]["phone"]
    assert 0 <= phone["fallback"] <= phone["accepted"] + phone["rejected_total"]
    assert "fallback" not in data["identifiers"]["email"]
    assert "rows/s" in stderr
    assert "wrote" in stderr


def test_nothing_raw_reaches_output_report_or_terminal(tmp_path: Path) -> None:
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    code, stdout, stderr = invoke(str(FIXTURE), "-o", str(out), "--report", str(report))
    assert code == 0
    raw = raw_identifiers(FIXTURE)
    assert len(raw) > 1000
    for text in (out.read_text(), report.read_text(), stdout, stderr):
        assert count_leaks(text, raw) == 0


def test_output_to_stdout_and_input_from_stdin() -> None:
    data = gzip.compress(FIXTURE.read_bytes())
    code, stdout, _ = invoke("-", "-o", "-", "-q", stdin=data)
    assert code == 0
    assert stdout.startswith("type,value\n")
    assert stdout.count("\n") > 1000


def test_wide_layout_flag(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    code, _, _ = invoke(str(FIXTURE), "-o", str(out), "--layout", "wide", "-q")
    assert code == 0
    assert out.read_text().splitlines()[0] == "EMAIL_ID_SHA256,PHONE_NUMBER_SHA256,DEVICE_ID_SHA256"


def test_column_flags_pick_columns(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("id,contact\n1,someone@example.com\n", encoding="utf-8")
    code, _, _ = invoke(str(src), "-o", str(out), "--email-column", "contact", "-q")
    assert code == 0
    assert out.read_text().splitlines()[1].startswith("EMAIL_ID_SHA256,")


@pytest.mark.parametrize(
    ("setup", "extra", "exit_code", "message"),
    [
        pytest.param(None, [], 66, r"missing\.csv: no such file", id="missing-file"),
        pytest.param(b"", [], 65, r"in\.csv: is empty", id="empty-file"),
        pytest.param(
            b"email\n", [], 65, r"in\.csv: has a header but no data rows", id="header-only"
        ),
        pytest.param(
            b"id,name\n1,x\n",
            [],
            65,
            r"in\.csv: no identifier column found",
            id="no-identifier-column",
        ),
        pytest.param(
            b"email\na@example.com\n",
            ["--phone-column", "mobile"],
            65,
            r"in\.csv: no column 'mobile' \(--phone-column\)",
            id="missing-column",
        ),
        pytest.param(
            b"email\n\xff\xfe@x.com\n",
            [],
            65,
            r"in\.csv: line 2 is not valid UTF-8",
            id="bad-encoding",
        ),
        pytest.param(
            b"email\na@example.com\n",
            ["--default-region", "XX"],
            2,
            r"'XX' is not an ISO 3166 alpha-2 region",
            id="bad-region",
        ),
        pytest.param(
            b"email\na@example.com\n",
            ["--layout", "tall"],
            2,
            r"Invalid value for '--layout'",
            id="bad-layout",
        ),
    ],
)
def test_errors_have_messages_and_exit_codes(
    tmp_path: Path, setup: bytes | None, extra: list[str], exit_code: int, message: str
) -> None:
    src = tmp_path / ("missing.csv" if setup is None else "in.csv")
    if setup is not None:
        src.write_bytes(setup)
    out = tmp_path / "out.csv"
    code, _, stderr = invoke(str(src), "-o", str(out), *extra)
    assert code == exit_code
    assert re.search(message, stderr)
    assert not out.exists(), "no output file may be left behind on error"


def test_unwritable_output_is_an_output_error(tmp_path: Path) -> None:
    code, _, stderr = invoke(str(FIXTURE), "-o", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code == 73
    assert "--output" in stderr


def test_failed_run_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("previous good file\n")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"email\n\xff@x.com\n")
    code, _, _ = invoke(str(bad), "-o", str(out))
    assert code == 65
    assert out.read_text() == "previous good file\n"


def test_json_format_prints_the_columns_then_one_result_line(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    code, stdout, stderr = invoke(str(FIXTURE), "-o", str(out), "--log-format", "json")
    assert code == 0
    columns, line = [json.loads(x) for x in stdout.splitlines()]
    assert columns["event"] == "columns"
    assert columns["columns"] == {"email": "Email", "phone": "phone", "device_id": "device_id"}
    assert line["event"] == "result"
    assert line["report"]["rows_read"] == 3000
    assert stderr == ""


def test_json_errors_go_to_stdout_as_json(tmp_path: Path) -> None:
    code, stdout, stderr = invoke(str(tmp_path / "nope.csv"), "-o", "x.csv", "--log-format", "json")
    assert code == 66
    assert json.loads(stdout.splitlines()[-1])["error"] == "InputNotFoundError"
    assert "no such file" in stderr


def test_json_goes_to_stderr_when_the_file_goes_to_stdout() -> None:
    code, stdout, stderr = invoke(str(FIXTURE), "-o", "-", "--log-format", "json")
    assert code == 0
    assert stdout.startswith("type,value\n")
    assert json.loads(stderr.splitlines()[-1])["event"] == "result"


ENCODED = "email,phone,name\n" + "".join(
    f"j\u00f6rg.m\u00fcller{i}@example.com,+49 30 1234{i:04d},Ren\u00e9e \u2019{i}\u2019\n"
    for i in range(200)
)


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        pytest.param("cp1252", ENCODED.encode("cp1252"), id="cp1252"),
        pytest.param("UTF-16", ENCODED.encode("utf-16"), id="utf-16-with-bom"),
    ],
)
def test_encoding_flag_gives_the_hashes_of_the_utf8_file(
    tmp_path: Path, codec: str, data: bytes
) -> None:
    utf8, other = tmp_path / "utf8.csv", tmp_path / "other.csv"
    utf8.write_text(ENCODED, encoding="utf-8")
    other.write_bytes(data)
    outputs = []
    for path, extra in ((utf8, []), (other, ["--encoding", codec])):
        out = tmp_path / f"{path.stem}.out.csv"
        code, _, stderr = invoke(str(path), "-o", str(out), "-q", *extra)
        assert code == 0, stderr
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 401


def test_audience_column_files_honour_the_encoding_flag(tmp_path: Path) -> None:
    """Regression: `prepare --audience-column` ignored --encoding ("pass --encoding cp1252")."""
    text = "team,email\n" + "".join(f"{'ab'[i % 2]},j\u00f6rg{i}@example.com\n" for i in range(40))
    utf8, other = tmp_path / "utf8.csv", tmp_path / "cp.csv"
    utf8.write_text(text, encoding="utf-8")
    other.write_bytes(text.encode("cp1252"))
    for path, extra in ((utf8, []), (other, ["--encoding", "cp1252"])):
        out = str(tmp_path / f"{path.stem}-{{value}}.csv")
        code, _, stderr = invoke(str(path), "-o", out, "--audience-column", "team", "-q", *extra)
        assert code == 0, stderr
    for team in "ab":
        expected = (tmp_path / f"utf8-{team}.csv").read_text()
        assert (tmp_path / f"cp-{team}.csv").read_text() == expected
        assert expected.count("\n") == 21


def test_an_unknown_encoding_is_a_usage_error_naming_the_flag(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email\na@example.com\n", encoding="utf-8")
    code, _, stderr = invoke(str(src), "-o", str(tmp_path / "o.csv"), "--encoding", "klingon")
    assert code == 2
    assert "Invalid value for '--encoding': 'klingon' is not a text encoding" in stderr


def test_an_unknown_encoding_setting_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_ENCODING", "rot13")
    src = tmp_path / "in.csv"
    src.write_text("email\na@example.com\n", encoding="utf-8")
    code, _, stderr = invoke(str(src), "-o", str(tmp_path / "o.csv"))
    assert code == 78
    assert "SPOTIFY_ADS_ENCODING: not a text encoding Python knows" in stderr


def test_a_utf16_file_without_the_flag_is_named_with_the_flag(tmp_path: Path) -> None:
    src = tmp_path / "excel.csv"
    src.write_bytes(ENCODED.encode("utf-16"))
    code, _, stderr = invoke(str(src), "-o", str(tmp_path / "o.csv"))
    assert code == 65
    assert (
        "excel.csv: is UTF-16 (little-endian) text, not UTF-8; read it with --encoding utf-16"
        in (stderr)
    )


def test_one_row_is_one_row_in_the_summary(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email\nsomeone@example.com\n", encoding="utf-8")
    code, _, stderr = invoke(str(src), "-o", str(tmp_path / "o.csv"), "--log-format", "human")
    assert code == 0
    assert f"read 1 row from {src} (csv)" in stderr
    assert f"wrote 1 row, {(tmp_path / 'o.csv').stat().st_size:,} bytes" in stderr


def test_verbose_human_output_prints_sentences_not_python_dicts(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    code, _, stderr = invoke(str(FIXTURE), "-o", str(out), "--log-format", "human", "-v")
    assert code == 0
    assert "{'" not in stderr  # no Python repr of a report or a mapping
    assert "· result" not in stderr  # the outcome is the summary's last line, not a dump
    assert '· columns columns={"email":"Email","phone":"phone","device_id":"device_id"}' in stderr
    assert stderr.rstrip().endswith(f"(type-value layout) to {out}")
