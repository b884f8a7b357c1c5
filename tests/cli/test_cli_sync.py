"""`sync` and `demo` from the command line: outcomes become exit codes; nothing raw is printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import spotify_audience_sync.sync.guards as guards
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.sandbox import Sandbox, run_sandbox

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "segment.csv"


def sync(*args: str) -> tuple[int, str]:
    """Run `sync` on the fixture in the human format; return the exit code and stderr."""
    result = CliRunner().invoke(main, ["sync", str(FIXTURE), "--log-format", "human", *args])
    return result.exit_code, result.stderr


def test_sync_creates_then_skips_and_writes_a_report(env: Sandbox, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    code, stderr = sync("--audience-name", "cli test", "--report", str(report))
    assert code == 0, stderr
    assert "created" in stderr
    assert "status BOOKABLE" in stderr
    data = json.loads(report.read_text())
    assert data["sync"]["action"] == "created"
    assert data["prepare"]["rows_read"] == 3000
    rows = env.membership(data["sync"]["audience_id"])
    assert len(rows) == data["sync"]["identifiers"]

    code, stderr = sync("--audience-name", "cli test")
    assert code == 0
    assert "skipped" in stderr


def test_dry_run_exits_0_and_creates_nothing(env: Sandbox) -> None:
    code, stderr = sync("--audience-name", "cli test", "--dry-run")
    assert code == 0
    assert "would create" in stderr
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_empty_audience_exits_3(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(guards, "MIN_IDENTIFIERS", 10)
    small = tmp_path / "small.csv"
    small.write_text("email\n" + "".join(f"person{i}@example.com\n" for i in range(50)))
    result = CliRunner().invoke(
        main, ["sync", str(small), "--audience-name", "tiny", "--log-format", "human"]
    )
    assert result.exit_code == 3, result.stderr
    assert "matched none" in result.stderr


def test_still_processing_at_the_wait_timeout_exits_5(env: Sandbox) -> None:
    env.config.processing_delay = 30
    code, stderr = sync("--audience-name", "slow", "--wait-timeout", "0.2")
    assert code == 5, stderr
    assert "still processing" in stderr


def test_no_wait_exits_0(env: Sandbox) -> None:
    env.config.processing_delay = 30
    code, _ = sync("--audience-name", "slow", "--no-wait")
    assert code == 0


def test_too_few_identifiers_exits_4(env: Sandbox, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("email\n" + "".join(f"person{i}@example.com\n" for i in range(50)))
    result = CliRunner().invoke(main, ["sync", str(small), "--audience-name", "tiny"])
    assert result.exit_code == 4
    assert "only 50 identifiers" in result.stderr


def test_missing_credentials_exit_78_naming_the_variable(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPOTIFY_ADS_CLIENT_ID")
    code, stderr = sync("--audience-name", "cli x")
    assert code == 78
    assert "SPOTIFY_ADS_CLIENT_ID" in stderr


def test_a_bad_flag_is_named_as_typed_and_exits_2(env: Sandbox) -> None:
    code, stderr = sync("--audience-name", "cli x", "--chunk-size", "1000", "--ad-account-id", "12")
    assert code == 2
    assert stderr == (
        "error: invalid value: --ad-account-id: must be a UUID like "
        "12345678-1234-1234-1234-123456789abc; "
        "--chunk-size: Input should be greater than or equal to 262144\n"
    )


def test_a_bad_setting_is_named_by_its_variable_and_exits_78(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_UPLOAD_CHUNK_SIZE", "1000")
    code, stderr = sync("--audience-name", "cli x", "--ad-account-id", "12")
    assert code == 78  # a variable is at fault too: the configuration, not only the command line
    assert stderr == (
        "error: invalid setting: --ad-account-id: must be a UUID like "
        "12345678-1234-1234-1234-123456789abc; "
        "SPOTIFY_ADS_UPLOAD_CHUNK_SIZE: Input should be greater than or equal to 262144\n"
    )


def test_an_audience_id_that_is_not_a_uuid_is_a_usage_error(env: Sandbox) -> None:
    code, stderr = sync("--audience-id", "notauuid")
    assert code == 2
    assert "Invalid value for '--audience-id': 'notauuid' is not an id" in stderr


def test_audience_must_be_named_once(env: Sandbox) -> None:
    code, stderr = sync()
    assert code == 2
    assert "--audience-name or --audience-id" in stderr


def test_a_bad_description_fails_before_the_input_is_read(env: Sandbox, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "sync",
            str(tmp_path / "missing.csv"),
            "--audience-name",
            "x y",
            "--description",
            "d" * 81,
        ],
    )
    assert result.exit_code == 2  # a bad flag value; not 66: the input was never opened
    assert "--description must be at most 80 characters" in result.stderr


def test_a_failed_sync_still_writes_its_report(env: Sandbox, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("email\n" + "".join(f"person{i}@example.com\n" for i in range(50)))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["sync", str(small), "--audience-name", "tiny", "--report", str(report)]
    )
    assert result.exit_code == 4
    data = json.loads(report.read_text())
    assert data["error"]["error"] == "SafetyError"
    assert data["error"]["exit_code"] == 4
    assert data["prepare"]["rows_read"] == 50
    assert data["sync"]["identifiers"] == 50


def test_a_headerless_file_is_refused_without_echoing_its_first_row(
    env: Sandbox, tmp_path: Path
) -> None:
    headerless = tmp_path / "export.csv"
    headerless.write_text("john.doe@example.com,+14155551234\njane@example.com,+14155550000\n")
    result = CliRunner().invoke(main, ["sync", str(headerless), "--audience-name", "x y"])
    assert result.exit_code == 65
    printed = result.stdout + result.stderr
    assert "john.doe" not in printed
    assert "4155551234" not in printed
    assert "first row looks like data" in result.stderr


def test_nothing_raw_or_secret_is_printed(env: Sandbox, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        main, ["sync", str(FIXTURE), "--audience-name", "leak check", "--report", str(report)]
    )
    assert result.exit_code == 0
    printed = (result.output + result.stderr + report.read_text()).lower()
    raw: set[str] = set()
    for line in FIXTURE.read_text().splitlines()[1:]:
        for cell in line.split(","):
            cell = cell.strip().strip('"').lower()
            if len(cell) >= 6 and len(cell) != 64:  # emails, phones, device IDs; not hashes
                raw.add(cell)
    assert len(raw) > 3000
    leaks = sum(1 for value in raw if value in printed)
    assert leaks == 0
    secret = env.config.client_secret
    assert secret not in printed


def test_demo_runs_end_to_end() -> None:
    with run_sandbox():  # a second sandbox proves ports never clash
        pass
    result = CliRunner().invoke(main, ["demo", str(FIXTURE), "--processing-delay", "0.05"])
    assert result.exit_code == 0, result.stderr
    assert "created" in result.stderr
    assert result.stderr.count("skipped") == 1, "the second sync's outcome, once"
    assert "audiences in the ad account: 1" in result.stderr


def test_json_lines_carry_events_and_the_result(env: Sandbox) -> None:
    result = CliRunner().invoke(
        main, ["sync", str(FIXTURE), "--audience-name", "json", "--log-format", "json", "-v"]
    )
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert {"upload", "created", "status", "phase"} <= set(names)
    assert names[-1] == "result"
    final = events[-1]
    assert final["exit_code"] == 0
    assert final["sync"]["action"] == "created"
    assert final["prepare"]["rows_read"] == 3000
    assert all(e["level"] in {"debug", "info", "warning", "error"} for e in events)
    assert result.stderr == ""  # json mode: nothing for people on stderr


def test_json_errors_are_json_lines_too(env: Sandbox, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("email\n" + "".join(f"person{i}@example.com\n" for i in range(50)))
    result = CliRunner().invoke(
        main, ["sync", str(small), "--audience-name", "tiny", "--log-format", "json"]
    )
    assert result.exit_code == 4
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["event"] == "error"
    assert last["error"] == "SafetyError"
    assert last["exit_code"] == 4


def test_demo_without_fixtures_rehearses_on_a_generated_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # as in the container: no fixtures/ here
    result = CliRunner().invoke(main, ["demo", "--processing-delay", "0.05"])
    assert result.exit_code == 0, result.stderr
    assert "synthetic-segment.csv" in result.stderr
    assert "created" in result.stderr


def test_sync_reads_a_utf16_export_with_encoding(env: Sandbox, tmp_path: Path) -> None:
    wide = tmp_path / "excel.csv"
    wide.write_bytes(FIXTURE.read_text(encoding="utf-8").encode("utf-16"))
    fingerprints = []
    for path, extra in ((FIXTURE, []), (wide, ["--encoding", "utf-16"])):
        report = tmp_path / f"{path.stem}.json"
        args = ["sync", str(path), "--audience-name", "enc", "--dry-run", "--report", str(report)]
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.stderr
        fingerprints.append(json.loads(report.read_text())["prepare"]["fingerprint"])
    assert fingerprints[0] == fingerprints[1]
    assert fingerprints[0]


def test_a_blank_audience_name_is_refused(env: Sandbox) -> None:
    code, stderr = sync("--audience-name", "   ")
    assert code == 2
    assert stderr == "error: --audience-name is blank\n"
    assert audiences_of(env) == []


def test_a_namesake_in_other_case_is_named_beside_would_create(env: Sandbox) -> None:
    first_code, _ = sync("--audience-name", "NU 200k ")  # stored as 'NU 200k'
    assert first_code == 0
    code, stderr = sync("--audience-name", "nu 200k", "--dry-run")
    assert code == 0
    [existing] = audiences_of(env)
    assert (
        f"warning: audience 'NU 200k' ({existing['id']}) is named like 'nu 200k' but differs in "
        "case or surrounding spaces: it is not the audience synced; pass --audience-id "
        f"{existing['id']} to sync that one instead\n"
    ) in stderr
    assert "audience 'nu 200k' (new): would create" in stderr.splitlines()[-1]


def audiences_of(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.audiences.list(sandbox.ad_account_id, {})["audiences"]  # type: ignore[no-any-return]


def test_the_summary_names_both_match_rates_also_when_skipped(env: Sandbox) -> None:
    for action in ("created", "skipped"):
        code, stderr = sync("--audience-name", "cli rates")
        assert code == 0
        outcome = stderr.splitlines()[-1]
        assert f": {action};" in outcome
        assert outcome.endswith(
            "; status BOOKABLE, size 1,400 to 1,900; estimated match rate 47% to 63% per "
            "person (of 3,000 input rows with an accepted identifier), 22% to 30% per "
            "identifier (of 6,237 uploaded)"
        )
