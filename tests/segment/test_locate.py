"""Exact locations: errors name the line polars objects to, and every record maps to its line."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.sources import open_source


def read_all(path: Path, columns: list[str], **kwargs: object) -> None:
    with open_source(str(path), **kwargs) as source:  # type: ignore[arg-type]
        for _ in source.batches(columns):
            pass


def rows(n: int) -> str:
    return "".join(f"user{i}@example.com,+1 201 555 {i % 10000:04d}\n" for i in range(n))


@pytest.mark.parametrize(
    ("bad_line", "size"),
    [
        pytest.param(150_000, 160_000, id="far-into-a-big-file"),
        pytest.param(5, 20, id="small-file"),
        pytest.param(2, 20, id="first-data-line"),
    ],
)
def test_a_ragged_row_is_named_by_its_exact_line(tmp_path: Path, bad_line: int, size: int) -> None:
    lines = ["email,phone", *rows(size).splitlines()]
    lines[bad_line - 1] = "someone@example.com,+1 201 555 0000,extra"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_all(path, ["email", "phone"])  # polars checks the width when reading every column
    assert str(info.value) == (f"{path}: line {bad_line} has 3 fields where the header has 2")


def test_a_latin1_byte_is_named_by_its_line_not_its_chunk(tmp_path: Path) -> None:
    data = ("email,phone\n" + rows(160_000)).encode()
    lines = data.split(b"\n")
    lines[150_001] = "j\u00f6rg@example.com,1".encode("latin-1")  # line 150,002
    path = tmp_path / "latin1.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(InputError, match=r"latin1\.csv\.gz: line 150002 is not valid UTF-8 ") as e:
        read_all(path, ["email"])
    assert "--encoding cp1252" in str(e.value)
    assert "example.com" not in str(e.value)


def test_lines_count_quoted_newlines_and_crlf(tmp_path: Path) -> None:
    body = 'a@example.com,"one\r\ntwo\nthree"\r\n' * 1000  # three lines per record
    path = tmp_path / "notes.csv"
    path.write_bytes(b"email,note\r\n" + body.encode() + b"b@example.com,x,y\r\n")
    with pytest.raises(InputError, match=r"notes\.csv: line 3002 has 3 fields"):
        read_all(path, ["email", "note"], chunk_bytes=4096)


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text("email,note\n" + "a@example.com,x\n" * 30 + 'b@example.com,"oops\n', "utf-8")
    with pytest.raises(InputError, match=r"open\.csv: line 32 has a stray or unclosed double"):
        read_all(path, ["email"], chunk_bytes=64)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        pytest.param(b"[1, 2]", "is not a JSON object", id="array"),
        pytest.param(b'{"email": "a@example.com"', "is not valid JSON", id="cut"),
        pytest.param(b'{"email": "j\xf6rg@example.com"}', "is not valid UTF-8", id="latin1"),
    ],
)
def test_a_bad_ndjson_line_after_the_first_chunk_is_named_by_number(
    tmp_path: Path, line: bytes, why: str
) -> None:
    path = tmp_path / "bad.ndjson"
    good = b'{"email": "b@example.com"}\n'
    path.write_bytes(good * 40 + b"\n" + good * 9 + line + b"\n" + good)
    with pytest.raises(InputError, match=rf"bad\.ndjson: line 51 {why}") as info:
        read_all(path, ["email"], chunk_bytes=256)
    assert "example.com" not in str(info.value)


def expected_csv_lines(text: str) -> list[int]:
    """The 1-based line each data record starts on, by Python's csv module."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, previous = [], 0
    for _ in reader:
        starts.append(previous + 1)
        previous = reader.line_num
    return starts[1:]


@pytest.mark.parametrize("chunk_bytes", [64, 1000, 1 << 20])
def test_line_of_maps_every_csv_record_to_its_line(tmp_path: Path, chunk_bytes: int) -> None:
    records = []
    for i in range(500):
        note = "two\nlines" if i % 7 == 0 else ("" if i % 11 == 0 else "plain")
        records.append(f'u{i}@example.com,"{note}"' if i % 13 else "")
    text = "email,note\n" + "\n".join(records) + "\n"
    path = tmp_path / "seg.csv"
    path.write_text(text, encoding="utf-8")
    found: list[int] = []
    with open_source(str(path), chunk_bytes=chunk_bytes) as source:
        for batch in source.deferred_batches(["email"]):
            assert batch.unit == "line"
            with pytest.raises(RuntimeError):
                batch.line_of(np.arange(1))
            frame = batch()
            found += batch.line_of(np.arange(frame.height)).tolist()
    assert found == expected_csv_lines(text)


def test_line_of_skips_blank_ndjson_lines_as_polars_does(tmp_path: Path) -> None:
    path = tmp_path / "seg.ndjson"
    path.write_bytes(b'{"email": "a@example.com"}\n\n  \n{"email": "b@example.com"}\n' * 50)
    found: list[int] = []
    with open_source(str(path), chunk_bytes=100) as source:
        for batch in source.deferred_batches(["email"]):
            frame = batch()
            found += batch.line_of(np.arange(frame.height)).tolist()
    assert found == [n for i in range(50) for n in (4 * i + 1, 4 * i + 4)]


def test_line_of_on_the_fast_path_is_the_chunk_start_plus_the_index(tmp_path: Path) -> None:
    path = tmp_path / "seg.csv"
    path.write_text("email,phone\n" + rows(1000), encoding="utf-8")
    with open_source(str(path), chunk_bytes=4096) as source:
        batches = list(source.deferred_batches(["email"]))
        found = [batch.line_of(np.arange(batch().height)) for batch in batches]
    assert np.concatenate(found).tolist() == list(range(2, 1002))
    assert found[1][[0, 2]].tolist() == [found[0][-1] + 1, found[0][-1] + 3]


def test_parquet_batches_count_rows(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pl.DataFrame({"email": [f"u{i}@example.com" for i in range(600_000)]}).write_parquet(path)
    with open_source(str(path)) as source:
        batches = list(source.deferred_batches(["email"]))
    assert len(batches) > 1
    assert {b.unit for b in batches} == {"row"}
    second = batches[1]
    assert second.line_of(np.array([0]))[0] == batches[0]().height + 1


@pytest.mark.parametrize(
    ("column", "values", "kind"),
    [
        pytest.param("tags", [[1, 2]], "List", id="list"),
        pytest.param("blob", [b"\xff\xfe"], "Binary", id="binary-not-utf8"),
    ],
)
def test_a_parquet_column_that_is_not_text_is_named(
    tmp_path: Path, column: str, values: list[object], kind: str
) -> None:
    path = tmp_path / "seg.parquet"
    pl.DataFrame({"email": ["a@example.com"], column: values}).write_parquet(path)
    with pytest.raises(InputError) as info:
        read_all(path, ["email", column])
    assert str(info.value).startswith(f"{path}: column '{column}' (Parquet type {kind}")
    assert str(info.value).endswith("cannot be read as text")
