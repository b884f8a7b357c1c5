"""SIGTERM under `run PLAN --parallel` stops the running syncs too (issue 25, item 4).

A plan of 12 syncs runs as a real process against the sandbox, whose GCS answers each chunk
slowly and whose audiences stay PROCESSING, so syncs are mid-upload and mid-wait when the
signal comes. Kubernetes allows 30 s between SIGTERM and SIGKILL by default: the final object
(exit 143) must come within them, list every sync with its outcome, and leave a history row
per audience started and no upload session open.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.sandbox.config import FaultRule
from spotify_audience_sync.sync.backend import open_state

SYNCS = 12
ROWS = 8_000  # about 650 KB encoded: 3 chunks of 256 KiB, at 1 s each
GRACE = 30.0  # Kubernetes' default terminationGracePeriodSeconds


def _plan(folder: Path) -> Path:
    entries = []
    for k in range(SYNCS):
        # Of the four first syncs, one waits for processing while the others still upload.
        emails = "".join(f"s{k}u{i}@example.com\n" for i in range(ROWS * (1 + k % 4)))
        (folder / f"part{k}.csv").write_text("email\n" + emails)
        entries.append(f"  - name: part-{k}\n    input: part{k}.csv\n    audience_name: Part {k}\n")
    plan = folder / "plan.yaml"
    plan.write_text("syncs:\n" + "".join(entries))
    return plan


class _Lines:
    """The child's stdout as parsed JSON lines, each with the time it arrived."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("{"):
                self.seen.append((time.monotonic(), json.loads(line)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [line for _, line in list(self.seen) if line["event"] == name]

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert self._process.stdout is not None
        self._process.stdout.close()


def test_sigterm_stops_the_running_syncs_and_ends_within_the_grace_period(
    env: Sandbox, tmp_path: Path
) -> None:
    plan = _plan(tmp_path)
    env.config.processing_delay = 600.0  # audiences stay PROCESSING: syncs wait for them
    env.add_faults(FaultRule(route="gcsPut", count=10_000, delay=1.0))
    errors = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "spotify_audience_sync", "run", str(plan), "--parallel", "4",
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=errors, text=True,
        env={**os.environ, "SPOTIFY_ADS_UPLOAD_CHUNK_SIZE": str(256 * 1024)},
    )  # fmt: skip
    lines = _Lines(process)
    try:
        deadline = time.monotonic() + 120
        # Four syncs uploading, and at least one already waiting for processing.
        while len(lines.named("upload")) < 4 or not lines.named("created"):
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, "the uploads never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the latest sessions are open, their first chunks on the way
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        process.kill()
        errors.close()
    lines.join()
    stderr = (tmp_path / "stderr.txt").read_text()

    assert process.returncode == 143, stderr[-2000:]
    arrived, final = lines.seen[-1]
    assert final["event"] == "result"
    assert final["exit_code"] == 143
    assert arrived - signalled < GRACE, f"the final object came {arrived - signalled:.1f} s late"

    # Every sync has its outcome: its audiences' results, or the error that ended it.
    syncs = {s["name"]: s for s in final["syncs"]}
    assert sorted(syncs) == sorted(f"part-{k}" for k in range(SYNCS))
    for sync in syncs.values():
        assert sync["audiences"] or sync["error"]["exit_code"] == 143, sync
        for audience in sync["audiences"]:
            assert audience["exit_code"] in (0, 143), audience
    audiences = [a for s in syncs.values() for a in s["audiences"]]
    stopped = [a for a in audiences if a["exit_code"] == 143]
    assert any(a["sync"]["action"] is None for a in stopped), "no upload was stopped"
    assert any(a["sync"]["action"] == "created" for a in stopped), "no wait was stopped"
    never = [s for s in syncs.values() if not s["audiences"]]
    assert never, "with 4 at once, some syncs had not started"

    # A history row per audience started, with its outcome.
    with open_state(str(tmp_path / "state")) as backend:
        rows = backend.history(env.ad_account_id, limit=100)
    recorded = {row.audience_name: row for row in rows}
    assert len(rows) == len(audiences)
    for audience in audiences:
        row = recorded[audience["sync"]["audience_name"]]
        assert row.exit_code == audience["exit_code"]
        if row.exit_code == 143:
            assert row.error is not None
            assert row.error.startswith("terminated (SIGTERM)")

    # No upload session left open: each was completed or cancelled.
    sessions = [s for event in lines.named("upload") for s in env.upload_stats(event["upload_id"])]
    assert sessions
    assert all(s["done"] or s["cancelled"] for s in sessions), sessions
    assert any(s["cancelled"] for s in sessions)
