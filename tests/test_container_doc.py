"""docs/container.md describes exactly the exit codes and the events the code has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from spotify_audience_sync.errors import EXIT_TABLE

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "container.md").read_text(encoding="utf-8")
SOURCE = ROOT / "src" / "spotify_audience_sync"


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def test_every_exit_code_is_documented_and_no_other() -> None:
    rows = re.findall(r"^\| (\d+) \|", _section("Exit codes"), flags=re.MULTILINE)
    assert [int(code) for code in rows] == sorted(row.code for row in EXIT_TABLE)


def test_retryable_codes_are_marked_so() -> None:
    marked = re.findall(r"^\| (\d+) \|.*\*\*yes\*\*", _section("Exit codes"), flags=re.MULTILINE)
    assert {int(code) for code in marked} == {row.code for row in EXIT_TABLE if row.retryable}


def _emitted() -> set[str]:
    """Every event name the code can emit: emit("x"), event("x"), JobEvent("x", ...) and
    event(name) in logging."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("emit", "event", "JobEvent") and isinstance(first, ast.Constant):
                names.add(str(first.value))
            elif called in ("emit", "event") and isinstance(first, ast.IfExp):
                names |= {
                    str(n.value) for n in (first.body, first.orelse) if isinstance(n, ast.Constant)
                }
    names.discard("sandbox")  # not an event: the sandbox's own logging
    return names


def test_every_event_is_documented_and_no_other() -> None:
    section = _section("Output for machines")
    documented: set[str] = set()
    for cell in re.findall(r"^\s*\| (`[^|]+`) \|", section, flags=re.MULTILINE):
        documented |= set(re.findall(r"`([a-z_]+)`", cell))
    emitted = _emitted() | {"created", "replaced"}  # emitted as report.action
    assert documented == emitted
