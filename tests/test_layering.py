"""Imports run one way, down: cli -> sync -> (segment, spotify) -> identifiers -> errors.

Read from the source with ``ast`` (every import, including those inside functions and
``TYPE_CHECKING`` blocks), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "spotify_audience_sync"
ROOT = "spotify_audience_sync"

#: What each part may import besides itself. Parts are the sub-packages and the root modules.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "timefmt": set(),  # the one timestamp format: below everything, imports nothing of ours
    "redact": set(),  # masks secrets for every part: imports nothing of ours
    "settings": {"errors", "timefmt"},
    "identifiers": {"errors", "_native", "timefmt"},
    "segment": {"identifiers", "settings", "errors", "timefmt", "redact"},
    "spotify": {"settings", "errors", "timefmt", "redact"},
    "sync": {"segment", "spotify", "identifiers", "settings", "errors", "timefmt", "redact"},
    "sandbox": {"identifiers", "errors", "timefmt"},
    "cli": {
        "sync",
        "segment",
        "spotify",
        "identifiers",
        "sandbox",
        "settings",
        "errors",
        "timefmt",
        "redact",
        "",
    },
    "__main__": {"cli"},
    "": set(),  # the package root: its public names load lazily, by string
}


def _part(module: str) -> str:
    """``spotify_audience_sync.segment.pipeline`` -> ``segment``; the root itself -> ``""``."""
    rest = module.removeprefix(ROOT).lstrip(".")
    return rest.split(".")[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            if node.module == ROOT:  # `from spotify_audience_sync import X`: X is the target
                found += [(node.lineno, f"{ROOT}.{alias.name}") for alias in node.names]
            elif node.module:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == ROOT or name.startswith(ROOT + ".")]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module(path: Path) -> str:
    return ".".join((ROOT, *path.relative_to(PACKAGE).with_suffix("").parts))


def _violations(path: Path, module: str) -> list[str]:
    part = _part(module.removesuffix(".__init__"))
    allowed = ALLOWED[part] | {part}
    return [
        f"{module}:{line}: {part or 'the root'} imports {name}"
        for line, name in _imports(path)
        if _part(name) not in allowed and name not in (f"{ROOT}.__version__",)
    ]


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {_part(_module(path).removesuffix(".__init__")) for path in _modules()}
    assert parts <= set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way_down(path: Path) -> None:
    assert _violations(path, _module(path)) == []


def test_the_check_catches_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    fake = tmp_path / "pipeline.py"
    fake.write_text(
        (PACKAGE / "segment" / "pipeline.py").read_text()
        + "\n\ndef _late() -> None:\n    from spotify_audience_sync.sync import mirror\n"
    )
    found = _violations(fake, f"{ROOT}.segment.pipeline")
    assert len(found) == 1
    assert found[0].endswith("segment imports spotify_audience_sync.sync")


def test_the_check_catches_a_sideways_import(tmp_path: Path) -> None:
    fake = tmp_path / "upload.py"
    fake.write_text("from spotify_audience_sync.segment.report import write_json\n")
    assert _violations(fake, f"{ROOT}.spotify.upload") == [
        f"{ROOT}.spotify.upload:1: spotify imports {ROOT}.segment.report"
    ]
