"""Six first syncs of one name at once, each with its own state directory: one audience remains.

Separate state directories share no lock, so every run may find no audience and create one; the
race is settled after the create (``Mirror._settle_race``): the first created wins and every
other run deletes the audience it created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2

from conftest import SandboxProcess

NAME = "Raced audience"
RUNS = 6


def _segment(path: Path) -> Path:
    lines = ["email"] + [f"user{i}@example.com" for i in range(1500)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _start(
    sandbox_app: SandboxProcess, tmp_path: Path, n: int, segment: Path
) -> subprocess.Popen[str]:
    minted = sandbox_app.admin("POST", "/tokens")
    env = {
        **os.environ,
        **sandbox_app.env,
        "SPOTIFY_ADS_REFRESH_TOKEN": minted["refresh_token"],
        "SPOTIFY_ADS_TOKEN_STORE": str(tmp_path / f"tokens-{n}.json"),
        "SPOTIFY_ADS_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "spotify_audience_sync", "sync", str(segment)]
    command += ["--audience-name", NAME, "--state-dir", str(tmp_path / f"state-{n}")]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _audiences(sandbox_app: SandboxProcess) -> list[dict[str, Any]]:
    token = sandbox_app.admin("POST", "/tokens")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx2.get(
        sandbox_app.api_base_url.rstrip("/")
        + f"/ad_accounts/{sandbox_app.ad_account_id}/audiences",
        headers=headers,
        timeout=10,
    )
    listed.raise_for_status()
    return listed.json()["audiences"]  # type: ignore[no-any-return]


def _result(stdout: str) -> dict[str, object]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return next(line for line in reversed(lines) if line.get("event") == "result")


def test_six_concurrent_first_syncs_leave_one_audience(
    sandbox_app: SandboxProcess, tmp_path: Path
) -> None:
    segment = _segment(tmp_path / "segment.csv")
    # Every create held 15 s, longer than six interpreters take to start on a loaded machine:
    # all six runs find no audience, and their creates land together (often in one second of
    # created_at: the tie broken by id, the hardest case).
    hold = {"route": "createAudience", "count": RUNS, "delay": 15.0}
    sandbox_app.admin("POST", "/faults", json={"faults": [hold]})
    runs = [_start(sandbox_app, tmp_path, n, segment) for n in range(RUNS)]
    outputs = [run.communicate(timeout=120) for run in runs]
    codes = [run.returncode for run in runs]
    assert codes == [0] * RUNS, [err[-2000:] for _out, err in outputs]

    remaining = [a for a in _audiences(sandbox_app) if a["name"] == NAME]
    assert len(remaining) == 1, remaining
    winner = remaining[0]["id"]
    results = [_result(out) for out, _err in outputs]
    assert {r["sync"]["audience_id"] for r in results} == {winner}  # type: ignore[index]
    assert sum(r["sync"]["action"] == "created" for r in results) >= 2  # type: ignore[index]
    membership = sandbox_app.admin("GET", f"/audiences/{winner}/membership")
    assert membership["rows_total"] == 1500
    # Run again from a loser's state and from the winner's: both find the one audience by name
    # (no run is stuck on "2 audiences"). The loser saved no state for an upload that is not
    # in the winner (its fingerprint would be a guess), so it replaces; the winner skips.
    lost = ["duplicate_audience_deleted" in out + err for out, err in outputs]
    again = {
        n: _start(sandbox_app, tmp_path, n, segment) for n in (lost.index(True), lost.index(False))
    }
    for n, run in again.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        expected = "replaced" if lost[n] else "skipped"
        assert _result(out)["sync"]["action"] == expected  # type: ignore[index]
    assert [a["id"] for a in _audiences(sandbox_app) if a["name"] == NAME] == [winner]
