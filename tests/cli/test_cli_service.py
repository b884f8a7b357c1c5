"""Run it like a service (#23): the ad account first, lookalikes, names in step, orphans,
notifications and metrics, end to end through the CLI against the sandbox."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from conftest import Receiver
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.sandbox import Sandbox

UNKNOWN_ACCOUNT = "0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d"


def _segment(path: Path, people: range, tier: bool = False) -> Path:
    head = "email,tier\n" if tier else "email\n"
    rows = "".join(
        f"person{i}@example.com" + (f",{'ab'[i % 2]}" if tier else "") + "\n" for i in people
    )
    path.write_text(head + rows)
    return path


def invoke(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, [*args, "--log-format", "json"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def _events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == name]


def _audiences(env: Sandbox, kind: str = "CUSTOM") -> list[dict[str, Any]]:
    listed = env.audiences.list(env.ad_account_id, {"audience_types": [kind]})["audiences"]
    return list(listed)


def test_an_unknown_ad_account_fails_before_the_input_is_read(
    env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", UNKNOWN_ACCOUNT)
    seg = _segment(tmp_path / "s.csv", range(1500))
    code, lines, _ = invoke("sync", str(seg), "--audience-name", "Nobody")
    assert code == 78
    assert UNKNOWN_ACCOUNT in lines[-1]["message"]
    assert _events(lines, "columns") == []  # the input was never opened


def test_lookalike_is_made_once_and_kept(env: Sandbox, tmp_path: Path) -> None:
    seg = _segment(tmp_path / "s.csv", range(1500))
    code, first, stderr = invoke("sync", str(seg), "--audience-name", "Seeded", "--lookalike")
    assert code == 0, stderr
    result = first[-1]["sync"]
    assert result["lookalike_id"] is not None
    code, again, stderr = invoke("sync", str(seg), "--audience-name", "Seeded", "--lookalike")
    assert code == 0, stderr
    assert again[-1]["sync"]["action"] == "skipped"
    assert again[-1]["sync"]["lookalike_id"] == result["lookalike_id"]
    (lookalike,) = _audiences(env, "LOOKALIKE")
    assert lookalike["id"] == result["lookalike_id"]
    assert lookalike["seed_audience_id"] == result["audience_id"]
    created = [e["created"] for e in _events(first, "lookalike") + _events(again, "lookalike")]
    assert created == [True, False]


def test_an_audience_id_with_a_name_renames_it(env: Sandbox, tmp_path: Path) -> None:
    seg = _segment(tmp_path / "s.csv", range(1500))
    code, lines, stderr = invoke("sync", str(seg), "--audience-name", "Old name")
    assert code == 0, stderr
    audience_id = lines[-1]["sync"]["audience_id"]
    renamed = ["--audience-id", audience_id, "--audience-name", "New name"]
    code, lines, stderr = invoke("sync", str(seg), *renamed, "--description", "now", "--dry-run")
    assert code == 0, stderr
    assert lines[-1]["sync"]["edited"] == ["name", "description"]
    assert _events(lines, "would_edit")
    assert env.audiences.get(env.ad_account_id, audience_id)["name"] == "Old name"
    code, lines, stderr = invoke("sync", str(seg), *renamed, "--description", "now")
    assert code == 0, stderr
    stored = env.audiences.get(env.ad_account_id, audience_id)
    assert (stored["name"], stored["description"]) == ("New name", "now")
    assert lines[-1]["sync"]["action"] == "skipped"  # membership unchanged: only renamed


def test_orphaned_groups_are_reported_then_pruned(env: Sandbox, tmp_path: Path) -> None:
    both = _segment(tmp_path / "both.csv", range(3000), tier=True)
    group = ["--audience-column", "tier", "--audience-name-template", "Tier {value}"]
    code, _, stderr = invoke("sync", str(both), *group)
    assert code == 0, stderr
    by_hand = env.audiences.list(env.ad_account_id, {})["audiences"]
    assert {a["name"] for a in by_hand} == {"Tier a", "Tier b"}
    only_a = tmp_path / "only_a.csv"
    only_a.write_text(
        "".join(line for line in both.read_text().splitlines(True) if not line.endswith(",b\n"))
    )
    code, lines, stderr = invoke("sync", str(only_a), *group)
    assert code == 0, stderr
    (warning,) = [w for w in _events(lines, "warning") if w["code"] == "orphaned_audience"]
    assert "'Tier b'" in warning["message"]
    assert "kept" in warning["message"]
    assert {a["name"] for a in _audiences(env)} == {"Tier a", "Tier b"}
    code, lines, stderr = invoke("sync", str(only_a), *group, "--prune-orphans")
    assert code == 0, stderr
    assert {a["name"] for a in _audiences(env)} == {"Tier a"}
    actions = [a["sync"]["action"] for a in lines[-1]["audiences"]]
    assert sorted(actions) == ["deleted", "skipped"]


def test_a_plan_sync_removed_from_the_plan_is_an_orphan(env: Sandbox, tmp_path: Path) -> None:
    _segment(tmp_path / "one.csv", range(1500))
    _segment(tmp_path / "two.csv", range(2000, 3500))
    plan = tmp_path / "plan.yaml"
    two = "  - {name: two, input: two.csv, audience_name: Two}\n"
    plan.write_text("syncs:\n  - {name: one, input: one.csv, audience_name: One}\n" + two)
    code, _, stderr = invoke("run", str(plan))
    assert code == 0, stderr
    plan.write_text("syncs:\n  - {name: one, input: one.csv, audience_name: One}\n")
    code, lines, stderr = invoke("run", str(plan), "--only", "one")
    assert code == 0, stderr
    assert not [w for w in _events(lines, "warning") if w["code"] == "orphaned_audience"]
    code, lines, stderr = invoke("run", str(plan), "--prune-orphans")
    assert code == 0, stderr
    (warning,) = [w for w in _events(lines, "warning") if w["code"] == "orphaned_audience"]
    assert "'Two'" in warning["message"]
    assert {a["name"] for a in _audiences(env)} == {"One"}


def test_a_failed_run_notifies_once_and_a_quiet_success_does_not(
    env: Sandbox, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    seg = _segment(tmp_path / "s.csv", range(1500))
    code, _, stderr = invoke("sync", str(seg), "--audience-name", "Quiet", "--notify-url",
                             receiver.url)  # fmt: skip
    assert code == 0, stderr
    assert receiver.bodies == []  # no failure, no warning: nothing to say
    monkeypatch.setenv("SPOTIFY_ADS_NOTIFY_URL", receiver.url)
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", UNKNOWN_ACCOUNT)
    code, _, _ = invoke("sync", str(seg), "--audience-name", "Quiet")
    assert code == 78
    (body,) = receiver.bodies
    assert body["exit_code"] == 78
    assert "ended with exit 78" in body["text"]
    assert "person" not in json.dumps(body)  # never a value


def test_metrics_file_after_a_sync(env: Sandbox, tmp_path: Path) -> None:
    seg = _segment(tmp_path / "s.csv", range(1500))
    metrics = tmp_path / "sas.prom"
    code, _lines, stderr = invoke(
        "sync", str(seg), "--audience-name", "Charted", "--metrics-file", str(metrics)
    )
    assert code == 0, stderr
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
        if s.labels == {"audience": "Charted"}
    }
    assert samples["spotify_audience_sync_last_run_exit_code"] == 0
    assert samples["spotify_audience_sync_identifiers_uploaded"] == 1500
    assert samples["spotify_audience_sync_rows_read"] == 1500
    assert samples["spotify_audience_sync_last_success_timestamp_seconds"] > 0


def test_a_plan_sync_renamed_in_the_plan_renames_its_audience(env: Sandbox, tmp_path: Path) -> None:
    _segment(tmp_path / "one.csv", range(1500))
    plan = tmp_path / "plan.yaml"
    plan.write_text("syncs:\n  - {name: one, input: one.csv, audience_name: First name}\n")
    code, lines, stderr = invoke("run", str(plan))
    assert code == 0, stderr
    (audience,) = _audiences(env)
    plan.write_text("syncs:\n  - {name: one, input: one.csv, audience_name: Second name}\n")
    code, lines, stderr = invoke("run", str(plan))
    assert code == 0, stderr
    (renamed,) = _audiences(env)
    assert (renamed["id"], renamed["name"]) == (audience["id"], "Second name")
    assert _events(lines, "edited")


def test_a_group_whose_own_sync_failed_is_no_orphan(env: Sandbox, tmp_path: Path) -> None:
    """Review: group b still there but refused (too few identifiers) must not be pruned."""
    both = _segment(tmp_path / "both.csv", range(3000), tier=True)
    group = ["--audience-column", "tier", "--audience-name-template", "Tier {value}"]
    code, _, stderr = invoke("sync", str(both), *group)
    assert code == 0, stderr
    shrunk = tmp_path / "shrunk.csv"
    rows = both.read_text().splitlines(True)
    shrunk.write_text(rows[0] + "".join(r for r in rows[1:] if r.endswith(",a\n")) + rows[2])
    code, lines, stderr = invoke("sync", str(shrunk), *group, "--prune-orphans")
    assert code == 4, stderr  # group b refused by a guard
    assert {a["name"] for a in _audiences(env)} == {"Tier a", "Tier b"}
    assert not [w for w in _events(lines, "warning") if w["code"] == "orphaned_audience"]


def test_an_adopted_audience_is_never_pruned(env: Sandbox, tmp_path: Path) -> None:
    """Review: an audience this state found by name (made elsewhere) is not its own."""
    only_b = _segment(tmp_path / "b.csv", range(1, 3000, 2))
    code, _, stderr = invoke(
        "sync", str(only_b), "--audience-name", "Tier b", "--state-dir", str(tmp_path / "other")
    )
    assert code == 0, stderr
    both = _segment(tmp_path / "both.csv", range(3000), tier=True)
    group = ["--audience-column", "tier", "--audience-name-template", "Tier {value}"]
    code, lines, stderr = invoke("sync", str(both), *group)
    assert code == 0, stderr
    actions = {a["sync"]["audience_name"]: a["sync"]["action"] for a in lines[-1]["audiences"]}
    assert actions == {"Tier a": "created", "Tier b": "replaced"}
    only_a = tmp_path / "only_a.csv"
    only_a.write_text(
        "".join(line for line in both.read_text().splitlines(True) if not line.endswith(",b\n"))
    )
    code, _, stderr = invoke("sync", str(only_a), *group, "--prune-orphans")
    assert code == 0, stderr
    assert {a["name"] for a in _audiences(env)} == {"Tier a", "Tier b"}


def test_metrics_that_cannot_be_pushed_leave_the_exit_code_alone(
    env: Sandbox, tmp_path: Path
) -> None:
    """Review: a port that does not speak HTTP made a successful sync exit 1."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def garbage() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"not http at all\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=garbage, daemon=True)
    thread.start()
    seg = _segment(tmp_path / "s.csv", range(1500))
    try:
        code, lines, stderr = invoke(
            "sync", str(seg), "--audience-name", "Pushed", "--pushgateway-url",
            f"http://127.0.0.1:{port}",
        )  # fmt: skip
    finally:
        listener.close()
    assert code == 0, stderr
    assert [w["code"] for w in _events(lines, "warning")] == ["metrics_not_pushed"]


def test_a_refused_run_that_read_rows_notifies_without_a_value(
    env: Sandbox, tmp_path: Path, receiver: Receiver
) -> None:
    seg = _segment(tmp_path / "small.csv", range(50))  # under Spotify's 1,000: refused, exit 4
    code, _, _ = invoke("sync", str(seg), "--audience-name", "Small", "--notify-url", receiver.url)
    assert code == 4
    (body,) = receiver.bodies
    assert body["exit_code"] == 4
    assert body["audiences"][0]["rows_read"] == 50
    assert "example.com" not in json.dumps(body)


def test_country_column_with_an_audience_column(env: Sandbox, tmp_path: Path) -> None:
    """Review: the country column was not read in audience-column runs (internal error)."""
    src = tmp_path / "ph.csv"
    src.write_text(
        "phone,Country,tier\n" + "".join(f"020 7946 {i:04d},GB,{'ab'[i % 2]}\n" for i in range(200))
    )
    code, lines, stderr = invoke(
        "prepare", str(src), "-o", str(tmp_path / "{value}.csv"), "--country-column", "Country",
        "--audience-column", "tier",
    )  # fmt: skip
    assert code == 0, stderr
    written = {v: r["identifiers"]["phone"]["hashed"] for v, r in lines[-1]["audiences"].items()}
    assert written == {"a": 100, "b": 100}  # national GB numbers, read as GB


def test_a_consent_column_that_is_not_there_is_an_input_error(tmp_path: Path) -> None:
    src = _segment(tmp_path / "s.csv", range(10))
    code, lines, _ = invoke("prepare", str(src), "-o", str(tmp_path / "o.csv"), "--consent-column",
                            "Opt")  # fmt: skip
    assert code == 65
    assert "no column 'Opt' (--consent-column)" in lines[-1]["message"]


def test_a_lookalike_that_cannot_be_made_is_a_warning(env: Sandbox, tmp_path: Path) -> None:
    """Review: the membership is written; a lookalike failure must not fail the sync."""
    from spotify_audience_sync.sandbox import FaultRule

    seg = _segment(tmp_path / "s.csv", range(1500))
    code, _, stderr = invoke("sync", str(seg), "--audience-name", "Seed")
    assert code == 0, stderr
    env.faults.add([FaultRule(route="createAudience", status=400)])
    code, lines, stderr = invoke("sync", str(seg), "--audience-name", "Seed", "--lookalike")
    assert code == 0, stderr
    assert [w["code"] for w in _events(lines, "warning")] == ["lookalike_not_kept"]
    assert _audiences(env, "LOOKALIKE") == []
