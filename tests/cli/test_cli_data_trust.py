"""Data you can trust: spreadsheet exports, mostly rejected columns, and outputs that either are
written whole or fail before any work, each with its exit code."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from spotify_audience_sync.cli.main import main

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"
PHONES = [f"415555{i:04d}" for i in range(100, 160)]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prepare(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["prepare", *args])
    return result.exit_code, result.stdout, result.stderr


def phone_rows(out: Path) -> set[str]:
    return {
        line.split(",")[1]
        for line in out.read_text().splitlines()[1:]
        if line.startswith("PHONE_NUMBER_SHA256")
    }


EXPECTED = {sha(f"+1{p}") for p in PHONES}


@pytest.mark.parametrize("kind", ["csv", "ndjson", "parquet-float", "parquet-int"])
def test_phones_exported_as_numbers_are_read_as_their_digits(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        src = tmp_path / "in.csv"
        src.write_text("phone\n" + "".join(f"{p}.0\n" for p in PHONES))
    elif kind == "ndjson":
        src = tmp_path / "in.ndjson"
        src.write_text("".join(json.dumps({"phone": float(p)}) + "\n" for p in PHONES))
    else:
        src = tmp_path / "in.parquet"
        dtype = pl.Float64 if kind == "parquet-float" else pl.Int64
        pl.DataFrame({"phone": [int(p) for p in PHONES]}, schema={"phone": dtype}).write_parquet(
            src
        )
    out = tmp_path / "out.csv"
    code, _, stderr = prepare(str(src), "-o", str(out), "--log-format", "human")
    assert code == 0, stderr
    assert phone_rows(out) == EXPECTED
    assert "warning" not in stderr


def test_scientific_notation_is_rejected_with_a_warning_to_export_as_text(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    rows = [f"{p}" for p in PHONES[:50]] + ["4.15555E+09"] * 10
    src.write_text("phone\n" + "\n".join(rows) + "\n")
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    code, stdout, _ = prepare(
        str(src), "-o", str(out), "--report", str(report), "--log-format", "json"
    )
    assert code == 0
    data = json.loads(report.read_text())
    assert data["identifiers"]["phone"]["rejected"]["scientific_notation"] == 10
    (warning,) = [json.loads(x) for x in stdout.splitlines() if '"warning"' in x]
    assert "export the column as text" in warning["message"]
    assert warning["level"] == "warning"
    assert data["warnings"] == [warning["message"]]


def test_prepare_warns_about_a_mostly_rejected_column_naming_the_fix(tmp_path: Path) -> None:
    src = tmp_path / "uk.csv"
    src.write_text("phone\n" + "".join(f"07911 1{i:05d}\n" for i in range(200)))
    code, _, stderr = prepare(str(src), "-o", str(tmp_path / "o.csv"), "--log-format", "human")
    assert code == 0
    assert "warning: phone column 'phone': 200 of 200 non-empty values (100%)" in stderr
    assert "--default-region" in stderr
    assert "07911" not in stderr
    code, _, stderr = prepare(
        str(src), "-o", str(tmp_path / "o.csv"), "--default-region", "GB", "--log-format", "human"
    )
    assert code == 0
    assert "warning" not in stderr


def test_output_that_is_a_directory_fails_before_reading(tmp_path: Path) -> None:
    code, _, stderr = prepare(str(tmp_path / "missing.csv"), "-o", str(tmp_path))
    assert code == 73  # not 66: the output is checked before the input is even opened
    assert f"--output {tmp_path}: is a directory" in stderr
    assert "internal error" not in stderr


def test_report_in_a_missing_folder_fails_first_and_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    code, _, stderr = prepare(
        str(FIXTURE), "-o", str(out), "--report", str(tmp_path / "missing" / "r.json")
    )
    assert code == 73
    assert "--report" in stderr
    assert "does not exist" in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_an_output_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spotify_audience_sync.segment.outputs as outputs

    class FullFile:
        def __init__(self, real: object) -> None:
            self.real = real

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

    real_fdopen = os.fdopen
    monkeypatch.setattr(outputs.os, "fdopen", lambda *a, **k: FullFile(real_fdopen(*a, **k)))
    out = tmp_path / "out.csv"
    code, _, stderr = prepare(str(FIXTURE), "-o", str(out))
    assert code == 73
    assert f"--output {out}: cannot be written: the disk is full" in stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root may write anywhere, so the kernel's answer for another user is played by os.access."""
    import spotify_audience_sync.segment.outputs as outputs

    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: Path(path) != folder)
    code, _, stderr = prepare(str(FIXTURE), "-o", str(folder / "out.csv"))
    assert code == 73
    assert f"the folder {folder} is not writable (permission denied)" in stderr
    assert list(folder.iterdir()) == []


def test_sync_checks_its_report_path_before_any_request(env: object, tmp_path: Path) -> None:
    """A report that cannot be written must not turn a replaced audience into a failed run."""
    from spotify_audience_sync.sandbox import Sandbox

    assert isinstance(env, Sandbox)
    result = CliRunner().invoke(
        main,
        [
            "sync",
            str(FIXTURE),
            "--audience-name",
            "report first",
            "--log-format",
            "json",
            "--report",
            str(tmp_path / "nonexistent" / "r.json"),
        ],
    )
    assert result.exit_code == 73
    final = json.loads(result.stdout.splitlines()[-1])
    assert final["event"] == "error"
    assert final["error"] == "OutputError"
    assert final["retryable"] is False
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_rejects_report_lists_location_column_and_reason_never_the_value(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    lines = [
        "email,phone",
        "good@example.com,+1 415 555 0100",  # line 2
        "not-an-email,+1 415 555 0101",  # line 3: email malformed
        ",7.20391E+10",  # line 4: email blank (not listed), phone scientific
        '"qv7, with comma@x",n/a',  # line 5: both rejected
        "ok@example.com,",  # line 6
    ]
    src.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.csv"
    code, stdout, stderr = prepare(
        str(src), "-o", str(tmp_path / "o.csv"), "--rejects", str(rejects), "--max-reject-rate", "1"
    )
    assert code == 0, stderr
    assert rejects.read_text().splitlines() == [
        "line,column,reason",
        "3,email,malformed",
        "4,phone,scientific_notation",
        "5,email,malformed",
        "5,phone,not_a_number",
    ]
    assert oct(rejects.stat().st_mode & 0o777) == "0o600"
    text = rejects.read_text() + stdout + stderr
    for value in ("not-an-email", "7.20391E+10", "qv7", "n/a"):
        assert value not in text


def test_rejects_of_a_parquet_file_are_rows(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pl.DataFrame({"email": ["a@example.com", "bad", None, "worse"]}).write_parquet(src)
    rejects = tmp_path / "r.csv"
    code, _, _ = prepare(
        str(src), "-o", str(tmp_path / "o.csv"), "--rejects", str(rejects), "--max-reject-rate", "1"
    )
    assert code == 0
    assert rejects.read_text().splitlines() == [
        "row,column,reason",
        "2,email,malformed",
        "4,email,malformed",
    ]


def test_a_failed_run_leaves_no_rejects_report(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"email\nbad\n\xff@x.com\n")
    rejects = tmp_path / "r.csv"
    code, _, _ = prepare(str(src), "-o", str(tmp_path / "o.csv"), "--rejects", str(rejects))
    assert code == 65
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_rejects_lines_are_exact_across_quoted_newlines_and_chunks(tmp_path: Path) -> None:
    """Records that span lines, in a file read in many chunks: each reject's line is exact."""
    from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
    from spotify_audience_sync.segment.sources import open_source

    lines = ["email,note"]
    bad: list[int] = []
    for i in range(3000):
        if i % 7 == 0:
            lines.append(f'bad{i},"two\nlines"')
            bad.append(len(lines))  # the record starts on this line
            lines.append("")  # its second physical line is already in the string
            lines.pop()
        else:
            lines.append(f"u{i}@example.com,plain")
    text = "\n".join(lines) + "\n"
    src = tmp_path / "in.csv"
    src.write_text(text)
    rejects = tmp_path / "r.csv"
    options = PrepareOptions(rejects_path=str(rejects), max_reject_rate=1.0)
    with open_source(str(src), chunk_bytes=4096) as source:
        prepared = prepare_segment(source, options)
    with prepared:
        assert prepared.rejects is not None
        prepared.rejects.commit()
    listed = [int(row.split(",")[0]) for row in rejects.read_text().splitlines()[1:]]
    # Each earlier two-line record pushes the later records down one physical line.
    expected = [line + n for n, line in enumerate(bad)]
    assert listed == expected
    physical = text.splitlines()
    assert all(physical[line - 1].startswith("bad") for line in listed)
