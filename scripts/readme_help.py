"""Regenerate the README's `--help` blocks from the CLI itself, so they cannot drift.

    uv run python scripts/readme_help.py          # rewrite README.md in place
    uv run python scripts/readme_help.py --check  # exit 1 if README.md is stale (tests do this)

A block is marked ``<!-- help: prepare -->`` … ``<!-- /help -->`` and holds a fenced block.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from spotify_audience_sync.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- help: (?P<cmd>[a-z -]*?) -->\n)(.*?)(<!-- /help -->)", re.S)


def help_text(command: str) -> str:
    args = [*command.split(), "--help"] if command else ["--help"]
    result = CliRunner().invoke(main, args, prog_name="spotify-audience-sync", terminal_width=100)
    if result.exit_code != 0:
        raise SystemExit(f"`{command} --help` failed: {result.output}")
    return result.output


def render(text: str) -> str:
    def block(match: re.Match[str]) -> str:
        body = help_text(match["cmd"]).rstrip("\n")
        return f"{match[1]}```text\n{body}\n```\n{match[4]}"

    return BLOCK.sub(block, text)


def main_() -> int:
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in sys.argv:
        return 0 if fresh == current else 1
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
