"""`sync --audience-column`: one read, one Mirror sync per value, the worst exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import EXIT_SEVERITY, EXIT_TABLE, worst_exit_code
from spotify_audience_sync.sandbox import Sandbox


def segment(path: Path, sizes: dict[str, int]) -> Path:
    """A CSV of emails with a tier column: ``sizes[tier]`` distinct people per tier, the same
    people for a tier whatever the other tiers' sizes."""
    lines = ["email,tier"]
    for place, (tier, size) in enumerate(sizes.items()):
        lines += [f"person{place}-{i}@example.com,{tier}" for i in range(size)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_many(path: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(
        main,
        [
            "sync",
            str(path),
            "--audience-column",
            "tier",
            "--audience-name-template",
            "CRM {value}",
            "--log-format",
            "json",
            *args,
        ],
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def by_value(final: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["value"]: a for a in final["audiences"]}


def test_three_audiences_created_then_one_replaced_and_two_skipped(
    env: Sandbox, tmp_path: Path
) -> None:
    sizes = {"gold": 1200, "silver": 1100, "bronze": 1000}
    code, lines, stderr = run_many(segment(tmp_path / "a.csv", sizes))
    assert code == 0, stderr
    final = lines[-1]
    assert final["event"] == "result"
    audiences = by_value(final)
    assert sorted(audiences) == ["bronze", "gold", "silver"]
    for tier, size in sizes.items():
        sync = audiences[tier]["sync"]
        assert sync["action"] == "created"
        assert sync["audience_name"] == f"CRM {tier}"
        assert len(env.membership(sync["audience_id"])) == size
    results = [line for line in lines if line["event"] == "audience_result"]
    assert [r["value"] for r in results] == ["bronze", "gold", "silver"]

    # Only gold changes: it is replaced, the other two are skipped by their fingerprints.
    changed = dict(sizes, gold=1300)
    code, lines, stderr = run_many(segment(tmp_path / "b.csv", changed))
    assert code == 0, stderr
    audiences = by_value(lines[-1])
    assert audiences["gold"]["sync"]["action"] == "replaced"
    assert audiences["silver"]["sync"]["action"] == "skipped"
    assert audiences["bronze"]["sync"]["action"] == "skipped"
    assert len(env.membership(audiences["gold"]["sync"]["audience_id"])) == 1300
    listed = env.audiences.list(env.ad_account_id, {})["audiences"]
    assert len(listed) == 3


def test_a_failing_group_does_not_stop_the_others(env: Sandbox, tmp_path: Path) -> None:
    # "small" is under Spotify's 1,000 minimum: its guard refuses it (exit 4), the others sync.
    code, lines, _ = run_many(segment(tmp_path / "a.csv", {"a": 1000, "small": 20, "z": 1000}))
    assert code == 4
    audiences = by_value(lines[-1])
    assert audiences["small"]["exit_code"] == 4
    assert audiences["small"]["error"]["error"] == "SafetyError"
    assert audiences["a"]["sync"]["action"] == "created"
    assert audiences["z"]["sync"]["action"] == "created"
    assert lines[-1]["exit_code"] == 4


def test_a_bad_name_is_refused_before_any_write(env: Sandbox, tmp_path: Path) -> None:
    code, _, stderr = run_many(segment(tmp_path / "a.csv", {"ok": 1000, "x" * 90: 1000}))
    assert code == 78
    assert "refusing to sync any audience" in stderr
    assert "2 to 80 characters" in stderr
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_too_many_groups_are_refused(env: Sandbox, tmp_path: Path) -> None:
    path = segment(tmp_path / "a.csv", {f"t{i}": 2 for i in range(5)})
    code, _, stderr = run_many(path, "--max-audiences", "3")
    assert code == 78
    assert "more than 3 distinct values" in stderr


def test_rows_without_a_value_are_refused(env: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("email,tier\na@example.com,gold\nb@example.com,\n")
    code, _, stderr = run_many(path)
    assert code == 65
    assert "no value in the audience column 'tier'" in stderr


def test_an_empty_group_is_refused_before_any_write(env: Sandbox, tmp_path: Path) -> None:
    path = segment(tmp_path / "a.csv", {"gold": 1000})
    with path.open("a") as f:
        f.write("not-an-email,empty\n")
    code, _, stderr = run_many(path)
    assert code == 4
    assert "no valid identifier in the group(s) 'empty'" in stderr
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_the_template_must_use_the_value(env: Sandbox, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["sync", str(tmp_path / "x.csv"), "--audience-column", "tier", "--audience-name", "x"],
    )
    assert result.exit_code == 2
    assert "drop --audience-name" in result.stderr


def test_the_worst_exit_code_follows_the_documented_order() -> None:
    assert sorted(EXIT_SEVERITY) == sorted(row.code for row in EXIT_TABLE)
    assert worst_exit_code([0, 3, 5]) == 5
    assert worst_exit_code([0, 75, 4]) == 4
    assert worst_exit_code([3, 0]) == 3
    assert worst_exit_code([]) == 0


def test_prepare_writes_one_file_per_value(tmp_path: Path) -> None:
    path = segment(tmp_path / "a.csv", {"gold": 3, "silver": 2})
    result = CliRunner().invoke(
        main,
        [
            "prepare",
            str(path),
            "--audience-column",
            "tier",
            "-o",
            str(tmp_path / "out-{value}.csv"),
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert len((tmp_path / "out-gold.csv").read_text().splitlines()) == 1 + 3
    assert len((tmp_path / "out-silver.csv").read_text().splitlines()) == 1 + 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["audiences"]["gold"]["identifiers"]["email"]["written"] == 3


def test_prepare_refuses_a_value_that_is_not_a_file_name(tmp_path: Path) -> None:
    path = segment(tmp_path / "a.csv", {"../up": 3})
    result = CliRunner().invoke(
        main,
        ["prepare", str(path), "--audience-column", "tier", "-o", str(tmp_path / "{value}.csv")],
    )
    assert result.exit_code == 78
    assert "cannot be part of a file name" in result.stderr
