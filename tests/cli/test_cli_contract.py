"""The machine contract of the real entry point: every exit has its documented code and, in json
format, one final JSON object as the last stdout line, with the run's id and the version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spotify_audience_sync import __version__
from spotify_audience_sync.sandbox import Sandbox

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "spotify_audience_sync", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=120,
        check=False,
    )


def last(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert lines, "no JSON line on stdout"
    final = json.loads(lines[-1])
    assert final["version"] == __version__
    assert len(final["run_id"]) == 32
    return final  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("args", "env", "code", "kind"),
    [
        pytest.param(["sync", "--bogus"], {}, 2, "UsageError", id="unknown-flag"),
        pytest.param(
            ["sync", "in.csv", "--audience-name", "a", "--chunk-size", "1000"],
            {},
            2,
            "UsageError",
            id="bad-chunk-size",
        ),
        pytest.param(
            ["sync", "in.csv", "--audience-name", "a", "--ad-account-id", "123"],
            {},
            2,
            "UsageError",
            id="bad-ad-account",
        ),
        pytest.param(
            ["sync", "in.csv", "--audience-name", "a"],
            {"SPOTIFY_ADS_WAIT_TIMEOUT": "abc"},
            78,
            "ConfigError",
            id="bad-env-setting",
        ),
        pytest.param(["prepare"], {}, 2, "UsageError", id="missing-input"),
        pytest.param(["nosuchcommand"], {}, 2, "UsageError", id="unknown-command"),
    ],
)
def test_every_early_exit_ends_in_one_final_json_object(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, kind: str
) -> None:
    result = cli(*args, "--log-format", "json", env={"HOME": str(tmp_path), **env})
    assert result.returncode == code, result.stderr
    final = last(result.stdout)
    assert final["event"] == "error"
    assert final["error"] == kind
    assert final["exit_code"] == code
    assert final["message"]


def test_json_is_the_default_without_a_terminal(tmp_path: Path) -> None:
    result = cli("sync", "--bogus", env={"HOME": str(tmp_path)})
    assert last(result.stdout)["exit_code"] == 2


def test_human_format_prints_no_json(tmp_path: Path) -> None:
    result = cli("sync", "--bogus", "--log-format", "human", env={"HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == ""


def test_version_and_help_print_no_result_object(tmp_path: Path) -> None:
    result = cli("--version", env={"HOME": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.strip() == f"spotify-audience-sync, version {__version__}"


def test_every_line_of_a_run_shares_its_run_id(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    result = cli("prepare", str(FIXTURE), "-o", str(out), "--log-format", "json", "-v")
    assert result.returncode == 0
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) >= 2
    assert len({line["run_id"] for line in lines}) == 1
    assert {line["version"] for line in lines} == {__version__}
    assert lines[-1]["event"] == "result"
    assert lines[-1]["exit_code"] == 0


def test_quiet_human_still_prints_the_final_result(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    result = cli("prepare", str(FIXTURE), "-o", str(out), "-q", "--log-format", "human")
    assert result.returncode == 0
    assert result.stderr.strip() == (
        f"wrote 6,237 rows, 515,933 bytes (type-value layout) to {out}"
    )


def test_check_speaks_json(env: Sandbox) -> None:
    result = cli("check", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["event"] == "result"
    assert line["command"] == "check"
    assert line["exit_code"] == 0
    assert line["ad_account_id"] == env.ad_account_id


def test_a_declined_confirmation_has_its_own_code(env: Sandbox) -> None:
    result = cli("audiences", "delete", "00000000-0000-4000-8000-000000000000", stdin="n\n")
    assert result.returncode == 10
    assert "declined; nothing was changed" in result.stderr


def test_sigterm_mid_upload_cancels_the_session_removes_staged_files_and_exits_143(
    env: Sandbox, tmp_path: Path
) -> None:
    import signal
    import time

    from spotify_audience_sync.sandbox.config import FaultRule

    env.add_faults(FaultRule(route="gcsPut", delay=1.0, count=100))  # a slow upload
    stage = tmp_path / "stage"
    stage.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "spotify_audience_sync", "sync", str(FIXTURE),
         "--audience-name", "deadline", "--log-format", "json", "--chunk-size", "262144",
         "--temp-dir", str(stage)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:  # wait until the upload has begun
            lines.append(json.loads(line))
            if lines[-1]["event"] == "upload":
                break
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        rest, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    lines += [json.loads(x) for x in rest.splitlines()]
    final = lines[-1]
    assert final["event"] == "error"
    assert final["error"] == "Terminated"
    assert final["exit_code"] == 143
    assert list(stage.iterdir()) == [], "staged files left behind"
    upload_id = next(x["upload_id"] for x in lines if x["event"] == "upload")
    (session,) = env.upload_stats(upload_id)
    assert session["cancelled"] is True
    assert session["done"] is False
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_retries_and_waits_are_json_events_not_text_on_stderr(env: Sandbox) -> None:
    from spotify_audience_sync.sandbox.config import FaultRule

    env.add_faults(
        FaultRule(route="gcsPut", status=503),
        FaultRule(route="batchGetAudiences", status=429, retry_after=1),
    )
    result = cli("sync", str(FIXTURE), "--audience-name", "retried", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    events = {(x["event"], x["level"]) for x in lines}
    assert ("retry", "warning") in events
    assert ("rate_limit_wait", "warning") in events
    assert ("resume", "warning") in events
    assert "retry" not in result.stderr
    assert "HTTP 503" not in result.stderr
    assert "X-Goog-Signature" not in result.stdout
    assert lines[-1]["event"] == "result"


def test_a_plan_error_ends_in_one_final_json_object_and_list_stays_data(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "syncs:\n  - name: a\n    input: x.csv\n    audience_name: Gold\n    bogus: 1\n"
    )
    result = cli("run", str(plan), "--log-format", "json", env={"HOME": str(tmp_path)})
    assert result.returncode in (2, 78), result.stderr
    final = last(result.stdout)
    assert final["event"] == "error"
    assert "bogus" in final["message"]
    good = tmp_path / "good.yaml"
    good.write_text("syncs:\n  - name: a\n    input: x.csv\n    audience_name: Gold\n")
    listed = cli("run", str(good), "--list", "--json", env={"HOME": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == ["a"]
