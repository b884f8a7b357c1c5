"""Input formats and errors: every format reads the same rows; every failure names the file."""

from __future__ import annotations

import gzip
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.errors import InputError, InputNotFoundError
from spotify_audience_sync.segment import chunks, sources
from spotify_audience_sync.segment.sources import detect_format, open_source

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
    with pytest.raises(InputError, match=r"latin1\.csv: line 3 is not valid UTF-8") as info:
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
    with pytest.raises(
        InputError, match=r"broken\.csv: line 2 has a stray or unclosed double quote"
    ) as info:
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


def test_a_stray_quote_fails_promptly_instead_of_rescanning_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One `5'11"` early on makes every later newline look quoted; stepping back over ~150,000
    # of them must not recount the quotes from byte 0 each time (that never finished).
    monkeypatch.setattr(chunks, "MAX_RECORD_BYTES", 1 << 20)
    path = tmp_path / "heights.csv"
    rows = ["email,height", "a@example.com,170", "b@example.com,5'11\""]
    path.write_text("\n".join(rows + ["c@example.com,180"] * 150_000) + "\n", encoding="utf-8")
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_all(str(path), ["email", "height"])
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.perf_counter()
    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "still scanning after 5 s"
    assert time.perf_counter() - started < 3
    error = outcome[0]
    assert isinstance(error, InputError)
    assert "heights.csv: a record runs past 1 MiB without ending" in str(error)
    assert "unclosed double quote" in str(error)
    assert "example.com" not in str(error)


def test_a_stray_quote_at_the_end_is_the_malformed_row_error(tmp_path: Path) -> None:
    path = tmp_path / "tail.csv"
    path.write_text("email\n" + "a@example.com\n" * 50_000 + 'b@example.com"\n', encoding="utf-8")
    with pytest.raises(
        InputError, match=r"tail\.csv: line 50002 has a stray or unclosed double quote"
    ) as info:
        read_all(str(path), ["email"], chunk_bytes=4096)
    assert "example.com" not in str(info.value)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"email, phone", id="space-after-comma"),
        pytest.param(b" email ,\tphone ", id="padded"),
        pytest.param(b'"email", "phone"', id="quoted"),
    ],
)
def test_header_names_are_matched_after_stripping_spaces(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "seg.csv"
    path.write_bytes(header + b"\na@example.com,+1 201\nb@example.com,0044\n")
    with open_source(str(path)) as source:
        assert source.columns == ["email", "phone"]
    assert read_all(str(path), ["phone", "email"]) == [
        {"phone": "+1 201", "email": "a@example.com"},
        {"phone": "0044", "email": "b@example.com"},
    ]


def test_crlf_line_ends_and_quoted_newlines_across_small_chunks(tmp_path: Path) -> None:
    path = tmp_path / "dos.csv"
    body = b'a@example.com,"one\r\ntwo"\r\n' * 300
    path.write_bytes(b"email,note\r\n" + body)
    rows = read_all(str(path), ["email", "note"], chunk_bytes=50)
    assert rows == [{"email": "a@example.com", "note": "one\r\ntwo"}] * 300


def test_cr_only_line_ends_are_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b"email,phone\ra@example.com,+1 201\rb@example.com,0044\r")
    with pytest.raises(InputError, match=r"mac\.csv: line ends are CR only .*convert to LF") as e:
        open_source(str(path))
    assert "example.com" not in str(e.value)


def test_an_unclosed_quote_in_the_header_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_bytes(b'"email,phone\na@example.com,1\n')
    with pytest.raises(
        InputError, match=r"quote\.csv: the header row has an unclosed double quote"
    ):
        open_source(str(path))


def test_a_repeated_column_name_is_an_input_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_bytes(b"email,phone,email\na@example.com,1,b@example.com\n")
    with pytest.raises(InputError, match=r"twice\.csv: .*column 'email' twice \(columns 1 and 3\)"):
        open_source(str(path))


def test_empty_column_names_may_repeat(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_bytes(b"email,,\na@example.com,,\n")
    assert read_all(str(path), ["email"]) == [{"email": "a@example.com"}]


def test_a_repeated_value_in_a_headerless_first_row_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "headerless.csv"
    path.write_bytes(b"john@example.com,john@example.com\njane@example.com,jane@example.com\n")
    with pytest.raises(InputError, match=r"headerless\.csv: .*lack a header row") as info:
        open_source(str(path))
    assert "example.com" not in str(info.value)


def test_a_headerless_source_does_not_show_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "headerless.csv"
    path.write_bytes(b"john@example.com,+14155551234\njane@example.com,+14155550000\n")
    with open_source(str(path)) as source:
        assert "example.com" not in repr(source)
        with pytest.raises(
            InputError, match=r"headerless\.csv: no column named like data \(name not shown\)"
        ) as info:
            source.batches(["jane@example.com"])
    assert "example.com" not in str(info.value)


def test_ndjson_columns_are_the_union_of_keys_in_first_seen_order(tmp_path: Path) -> None:
    path = tmp_path / "seg.ndjson"
    path.write_bytes(
        b'{"email": "a@example.com"}\n'
        b'{"phone": "+1 201", "email": "b@example.com"}\n'
        b'{"device_id": null, "phone": "0044"}\n'
    )
    with open_source(str(path)) as source:
        assert source.columns == ["email", "phone", "device_id"]
    assert read_all(str(path), ["phone"]) == [
        {"phone": None},
        {"phone": "+1 201"},
        {"phone": "0044"},
    ]


def test_an_ndjson_key_first_seen_after_the_first_chunk_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "late.ndjson"
    path.write_bytes(b'{"email": "a@example.com"}\n' * 50 + b'{"phone": "+1 201"}\n')
    with open_source(str(path), chunk_bytes=64) as source:
        assert source.columns == ["email"]
        with pytest.raises(InputError, match=r"late\.ndjson: no column 'phone' among the keys"):
            source.batches(["phone"])


@pytest.mark.parametrize(
    ("line", "error"),
    [
        pytest.param(b"[1, 2]", r"line 2 is not a JSON object", id="array"),
        pytest.param(b'{"email": "a@example.com"', r"line 2 is not a JSON object", id="cut"),
        pytest.param(
            b'{"email": "j\xf6rg@example.com"}', r"line 2 is not valid UTF-8", id="latin1"
        ),
    ],
)
def test_a_bad_ndjson_line_in_the_first_chunk_is_named_by_number(
    tmp_path: Path, line: bytes, error: str
) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"email": "b@example.com"}\n' + line + b"\n")
    with pytest.raises(InputError, match=rf"bad\.ndjson: {error}") as info:
        open_source(str(path))
    assert "example.com" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("a@example.com", True, id="email"),
        pytest.param(" John.Doe@Example.COM ", True, id="padded-email"),
        pytest.param("+1 (201) 555-0123", True, id="phone-punctuated"),
        pytest.param("0044 7400 123456", True, id="phone-spaced"),
        pytest.param("tel:+14155551234", True, id="phone-uri"),
        pytest.param("a" * 64, True, id="sha256-hex"),
        pytest.param("38400000-8CF0-11BD-B23E-10B96E40000D", True, id="device-uuid"),
        pytest.param("email", False, id="name"),
        pytest.param("EMAIL_ID_SHA256", False, id="hashed-name"),
        pytest.param("phone_2", False, id="numbered-name"),
        pytest.param("signup_20240101", True, id="dated-name-leans-to-data"),
        pytest.param("2024", False, id="year"),
        pytest.param("", False, id="empty"),
        pytest.param("a" * 31, False, id="not-quite-a-device-id"),
        pytest.param("mobile 4155550123", True, id="phone-after-a-word"),
        pytest.param("Phone: 415 555 0123", True, id="phone-after-a-label"),
        pytest.param("415.555.0123 home", True, id="phone-before-a-word"),
        pytest.param("(415) 555/0123", True, id="phone-slashed"),
        pytest.param("5550123", True, id="seven-digits"),
        pytest.param("555-012", True, id="mostly-digits"),
        pytest.param("384000008cf011bdb23e10b96e40000d", True, id="device-id-without-dashes"),
        pytest.param("id 38400000-8cf0-11bd-b23e-10b96e40000d", True, id="uuid-inside-text"),
        pytest.param("a" * 63, True, id="long-hex-run"),
        pytest.param("Email Address", False, id="spaced-name"),
        pytest.param("mobile_ad_id", False, id="alias-name"),
    ],
)
def test_looks_like_data(name: str, data: bool) -> None:
    assert sources.looks_like_data(name) is data


_PIECES = [b'"', b",", b"\t", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xff", b" ", b"email"]
_PIECES += [b"pii@example.com", b"{", b"}", b":", b"[", b"1"]


@settings(max_examples=300, deadline=None)
@given(
    content=st.lists(st.sampled_from(_PIECES), max_size=40).map(b"".join),
    name=st.sampled_from(["in.csv", "in.tsv", "in.ndjson", "in.csv.gz"]),
)
def test_any_bytes_read_or_fail_as_input_errors_that_quote_nothing(
    content: bytes, name: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
        error = read_everything_or_error(path)
    assert error is None or "example.com" not in str(error)


def read_everything_or_error(path: Path) -> InputError | None:
    try:
        with open_source(str(path), chunk_bytes=8) as source:
            for batch in source.batches(source.columns):
                assert batch.columns == list(dict.fromkeys(source.columns))
    except InputError as exc:
        return exc
    return None


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(alphabet='a"\n\r, @1', max_size=8), min_size=1, max_size=30),
    chunk_bytes=st.integers(min_value=1, max_value=64),
)
def test_any_chunk_size_reads_what_polars_wrote(values: list[str], chunk_bytes: int) -> None:
    frame = pl.DataFrame({"email": values, "note": values[::-1]})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seg.csv"
        frame.write_csv(path, quote_style="non_numeric")
        with open_source(str(path), chunk_bytes=chunk_bytes) as source:
            read = pl.concat(list(source.batches(["note", "email"])))
    assert read.equals(frame.select("note", "email"))


def test_quote_parity_over_large_chunks_matches_a_whole_file_read(tmp_path: Path) -> None:
    """Chunks large enough that quotes are counted with numpy (64 KiB and up) still cut only
    between records: quoted newlines, doubled quotes and empty quoted fields included."""
    rows = [
        (f"user{i}@example.com", f'line one\nline "{i}" two' if i % 7 == 0 else f"n{i}", "")
        for i in range(40_000)
    ]
    frame = pl.DataFrame(rows, schema=["email", "note", "empty"], orient="row")
    path = tmp_path / "seg.csv"
    frame.write_csv(path, quote_style="always")
    assert path.stat().st_size > 10 * 100_000
    with open_source(str(path), chunk_bytes=100_000) as source:
        batches = list(source.batches(["email", "note"]))
    assert len(batches) > 10
    assert pl.concat(batches).equals(frame.select("email", "note"))


@pytest.mark.parametrize("size", [0, 10, 70_000, 300_000])
def test_counting_bytes_agrees_with_bytes_count(size: int) -> None:
    data = bytes((i * 7919) % 251 for i in range(size)).replace(b"\x00", b'"')
    for start, end in [(0, None), (size // 3, None), (size // 5, size // 2)]:
        stop = len(data) if end is None else end
        assert chunks.count(data, b'"', start, end) == data.count(b'"', start, stop)
