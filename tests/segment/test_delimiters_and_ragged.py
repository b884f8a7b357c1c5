"""Delimiters sniffed from the header, and rows with more or fewer fields than the header."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.delimiters import delimiter_named, sniff_delimiter
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a,b,c", ","),
        ("Kundennummer;Anrede;E-Mail;Telefon", ";"),
        ("id\temail\tphone", "\t"),
        ("id|email|phone", "|"),
        ('"last, first";email;phone', ";"),  # a comma inside quotes does not count
        ("email", ","),
    ],
)
def test_sniffed_from_the_header_line(header: str, expected: str) -> None:
    assert sniff_delimiter(header) == expected


@pytest.mark.parametrize(("value", "char"), [("tab", "\t"), ("\\t", "\t"), (";", ";"), ("|", "|")])
def test_delimiter_names(value: str, char: str) -> None:
    assert delimiter_named(value) == char


@pytest.mark.parametrize("value", ["", ";;", '"', "semi"])
def test_bad_delimiters_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="--delimiter"):
        delimiter_named(value)


def _prepare(path: Path, **kw: object) -> tuple[list[str], object]:
    with (
        open_source(str(path), **kw) as source,  # type: ignore[arg-type]
        prepare_segment(source, PrepareOptions()) as prepared,
    ):
        out = io.BytesIO()
        prepared.write_to(out)
        return out.getvalue().decode().splitlines(), prepared.report


def test_a_semicolon_file_is_read_by_its_columns(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id;E-Mail;Telefon\n1;a@example.com;+49 151 23456789\n", "utf-8")
    lines, report = _prepare(src)
    assert len(lines) == 3
    assert report.identifiers["email"].column == "E-Mail"  # type: ignore[attr-defined]


def test_the_delimiter_flag_overrides_the_sniffing(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("email|note\na@example.com|x;y;z\n", "utf-8")
    with open_source(str(src), delimiter=";") as source:
        assert source.columns == ["email|note"]
    with open_source(str(src), delimiter="pipe") as source:
        assert source.columns == ["email", "note"]


@pytest.mark.parametrize("chunk_bytes", [64, 4 << 20])
def test_a_row_with_more_fields_is_refused_at_its_line(tmp_path: Path, chunk_bytes: int) -> None:
    src = tmp_path / "in.csv"
    rows = [f"u{i}@example.com,Name {i},x" for i in range(40)]
    rows[29] = "u29@example.com,Doe, Jane,x"  # an unquoted comma, in a column not read
    src.write_text("email,name,note\n" + "\n".join(rows) + "\n", "utf-8")
    with pytest.raises(InputError, match=r"in\.csv: line 31 has 4 fields where the header has 3"):
        _prepare(src, chunk_bytes=chunk_bytes)


def test_quoted_delimiters_and_newlines_are_not_extra_fields(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text('email,name\na@example.com,"Doe, Jane"\nb@example.com,"two\nlines"\n', "utf-8")
    lines, report = _prepare(src)
    assert len(lines) == 3
    assert report.short_rows == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("chunk_bytes", [64, 4 << 20])
def test_rows_with_fewer_fields_are_blanks_counted_and_warned(
    tmp_path: Path, chunk_bytes: int
) -> None:
    src = tmp_path / "in.csv"
    body = "".join(f"u{i}@example.com,Name,x\n" for i in range(10))
    src.write_text("email,name,note\n" + body + "\n" + '"Report total"\n', "utf-8")
    lines, report = _prepare(src, chunk_bytes=chunk_bytes)
    assert len(lines) == 11
    assert report.short_rows == 2  # type: ignore[attr-defined]
    assert any("2 of 12 rows have fewer fields" in w for w in report.warnings)  # type: ignore[attr-defined]
