"""Input formats and errors: every format reads the same rows; every failure names the file."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import polars as pl
import pytest

from spotify_audience_sync.errors import InputError, InputNotFoundError
from spotify_audience_sync.sources import detect_format, open_source

ROWS = [
    {"email": "a@example.com", "phone": "+1 201 555 0123", "note": "line one\nline two"},
    {"email": "B@Example.com", "phone": "0044 7400 123456", "note": 'says "hi", twice'},
    {"email": None, "phone": "07400 123456", "note": ""},
]


def read_all(path: str, columns: list[str], **kwargs: object) -> list[dict[str, str | None]]:
    with open_source(path, **kwargs) as source:  # type: ignore[arg-type]
        frames = list(source.batches(columns))
    return pl.concat(frames).to_dicts()


def expected(columns: list[str]) -> list[dict[str, str | None]]:
    return [{c: row[c] for c in columns} for row in ROWS]


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=dict.fromkeys(["email", "phone", "note"], pl.String))


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        pytest.param("seg.csv", lambda f, p: f.write_csv(p), id="csv"),
        pytest.param("seg.tsv", lambda f, p: f.write_csv(p, separator="\t"), id="tsv"),
        pytest.param("seg.ndjson", lambda f, p: f.write_ndjson(p), id="ndjson"),
        pytest.param("seg.parquet", lambda f, p: f.write_parquet(p), id="parquet"),
        pytest.param(
            "seg.csv.gz",
            lambda f, p: Path(p).write_bytes(gzip.compress(f.write_csv().encode())),
            id="csv-gzip",
        ),
        pytest.param(
            "seg.jsonl.gz",
            lambda f, p: Path(p).write_bytes(gzip.compress(f.write_ndjson().encode())),
            id="ndjson-gzip",
        ),
        pytest.param(
            "export.dat",
            lambda f, p: Path(p).write_bytes(gzip.compress(f.write_csv().encode())),
            id="gzip-by-magic-bytes",
        ),
    ],
)
def test_every_format_reads_the_same_rows(
    tmp_path: Path, frame: pl.DataFrame, name: str, writer: object
) -> None:
    path = tmp_path / name
    writer(frame, str(path))  # type: ignore[operator]
    assert read_all(str(path), ["email", "phone", "note"]) == expected(["email", "phone", "note"])


def test_small_chunks_never_cut_a_quoted_newline(tmp_path: Path, frame: pl.DataFrame) -> None:
    big = pl.concat([frame] * 200)
    path = tmp_path / "seg.csv"
    big.write_csv(path)
    with open_source(str(path), chunk_bytes=64) as source:
        batches = list(source.batches(["email", "note"]))
    assert len(batches) > 10
    assert pl.concat(batches).equals(big.select("email", "note"))


def test_stdin_is_read_when_path_is_dash(
    monkeypatch: pytest.MonkeyPatch, frame: pl.DataFrame
) -> None:
    data = gzip.compress(frame.write_csv().encode())
    fake = io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    monkeypatch.setattr(sys, "stdin", fake)
    assert read_all("-", ["email"]) == expected(["email"])


def test_leading_zeros_and_plus_signs_survive_as_text(tmp_path: Path) -> None:
    path = tmp_path / "seg.csv"
    path.write_text("phone\n0044123\n+1 201\n00123\n", encoding="utf-8")
    assert [r["phone"] for r in read_all(str(path), ["phone"])] == ["0044123", "+1 201", "00123"]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "seg.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,phone\na@example.com,1\n")
    with open_source(str(path)) as source:
        assert source.columns == ["email", "phone"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.GZ", "csv"),
        ("a.tsv", "tsv"),
        ("a.jsonl", "ndjson"),
        ("a.ndjson.gz", "ndjson"),
        ("a.parquet", "parquet"),
        ("noext", "csv"),
        ("-", "csv"),
    ],
)
def test_format_detection_by_name(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_missing_file_is_its_own_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InputNotFoundError, match=r"nope\.csv: no such file"):
        open_source(str(missing))


@pytest.mark.parametrize(
    "content", [b"", b"\n", b"\xef\xbb\xbf"], ids=["zero-bytes", "blank", "bom"]
)
def test_empty_file_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"empty\.csv: is empty"):
        open_source(str(path))


def test_invalid_utf8_names_the_file_and_line_but_not_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email\nok@example.com\nj\u00f6rg@example.com\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.csv: is not valid UTF-8") as info:
        read_all(str(path), ["email"])
    assert "rg@example" not in str(info.value)


def test_truncated_gzip_is_an_input_error(tmp_path: Path, frame: pl.DataFrame) -> None:
    path = tmp_path / "cut.csv.gz"
    data = gzip.compress(pl.concat([frame] * 500).write_csv().encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.csv\.gz: cannot be read"):
        read_all(str(path), ["email"])


def test_unclosed_quote_is_an_input_error_that_does_not_quote_data(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('email,phone\na@example.com,"1\nb@example.com,2\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.csv: has a malformed row") as info:
        read_all(str(path), ["email"])
    assert "example.com" not in str(info.value)


def test_not_parquet_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("email\na@example.com\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"fake\.parquet: not a readable Parquet file"):
        open_source(str(path))


def test_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        open_source(str(tmp_path))
