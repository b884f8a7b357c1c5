"""Encodings: other codecs are transcoded as they stream; UTF-16/32 and bad gzip are named."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import polars as pl
import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.encoding import sniff_wide_encoding, transcoded
from spotify_audience_sync.segment.sources import open_source

TEXT = "email,phone,note\n" + "".join(
    f"j\u00f6rg{i}@example.com,+49 30 1234{i:04d},\u2019caf\u00e9\u2019 \u20ac{i}\n"
    for i in range(3000)
)


def read_all(path: Path, **kwargs: object) -> list[dict[str, str | None]]:
    with open_source(str(path), **kwargs) as source:  # type: ignore[arg-type]
        return pl.concat(source.batches(["email", "phone", "note"])).to_dicts()


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        pytest.param("cp1252", TEXT.encode("cp1252"), id="cp1252"),
        pytest.param("utf-16", TEXT.encode("utf-16"), id="utf-16-bom"),
        pytest.param("utf-16-be", TEXT.encode("utf-16-be"), id="utf-16-be"),
        pytest.param("utf-32", gzip.compress(TEXT.encode("utf-32")), id="utf-32-gzip"),
    ],
)
def test_a_file_in_another_encoding_reads_as_its_utf8_twin(
    tmp_path: Path, codec: str, data: bytes
) -> None:
    twin, other = tmp_path / "utf8.csv", tmp_path / "other.csv"
    twin.write_text(TEXT, encoding="utf-8")
    other.write_bytes(data)
    assert read_all(other, encoding=codec, chunk_bytes=1000) == read_all(twin)


def test_the_transcoder_streams_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    class Counting(io.BytesIO):
        biggest = 0

        def read(self, size: int | None = -1) -> bytes:
            assert size is not None, "never a whole-file read"
            assert size > 0
            Counting.biggest = max(Counting.biggest, size)
            return super().read(size)

    stream = transcoded(Counting(TEXT.encode("utf-16")), "utf-16", "x")  # type: ignore[arg-type]
    assert stream.read().decode() == TEXT
    assert Counting.biggest <= 1 << 20


def test_a_byte_the_codec_does_not_define_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "win.csv"
    path.write_bytes(b"email,phone,note\na@example.com,1,x\nb@example.com,2,\x81\n")
    with pytest.raises(InputError, match=r"win\.csv: line 3 is not valid cp1252") as info:
        read_all(path, encoding="cp1252")
    assert "example.com" not in str(info.value)


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        pytest.param("utf-16", b"\x00\x00\x11\x00" * 8, id="utf-16-bare-unicode-error"),
        pytest.param("utf-16", b"e\x00\n\x00\x00\xd8\x00\xd8", id="utf-16-surrogate"),
        pytest.param("utf-7", b"email\n+2D8-\n", id="lone-surrogate-out"),
    ],
)
def test_bytes_the_codec_cannot_decode_are_an_input_error(
    tmp_path: Path, codec: str, data: bytes
) -> None:
    """Not "internal error (UnicodeError)": every codec failure is exit 65, naming the file."""
    path = tmp_path / "wide.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=rf"wide\.csv: line \d+ is not valid {codec}"):
        read_all(path, encoding=codec)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        pytest.param(TEXT.encode("utf-16"), "UTF-16 (little-endian)", id="utf-16-bom"),
        pytest.param(TEXT.encode("utf-16-le"), "UTF-16 (little-endian)", id="utf-16-le"),
        pytest.param(TEXT.encode("utf-16-be"), "UTF-16 (big-endian)", id="utf-16-be"),
        pytest.param(TEXT.encode("utf-32"), "UTF-32 (little-endian)", id="utf-32-bom"),
        pytest.param(TEXT.encode("utf-32-be"), "UTF-32 (big-endian)", id="utf-32-be"),
    ],
)
def test_utf16_and_utf32_are_named_with_the_flag_that_reads_them(
    tmp_path: Path, data: bytes, named: str
) -> None:
    path = tmp_path / "wide.csv.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(InputError) as info:
        open_source(str(path))
    assert str(info.value).startswith(f"{path}: is {named} text, not UTF-8; read it with --enc")
    assert sniff_wide_encoding(data[:64]) is not None


@pytest.mark.parametrize(
    "head", [TEXT.encode()[:64], b"", b"\x00\x01\x02binary\x00", "\u00e9t\u00e9".encode()]
)
def test_utf8_and_other_bytes_are_not_taken_for_utf16(head: bytes) -> None:
    assert sniff_wide_encoding(head) is None


def test_a_latin1_file_without_the_flag_suggests_cp1252_and_latin1(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(TEXT.encode("cp1252"))
    with pytest.raises(InputError) as info:
        read_all(path)
    assert str(info.value) == (
        f"{path}: line 2 is not valid UTF-8 (from Windows or Excel? pass --encoding cp1252; "
        "else perhaps --encoding latin-1)"
    )


def test_a_truncated_gzip_says_so(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    data = gzip.compress(TEXT.encode() * 20)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        read_all(path)
    assert str(info.value) == (
        f"{path}: cannot be read to the end: the gzip stream is truncated "
        "(it ends before its end marker)"
    )


def test_a_corrupt_gzip_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    data = bytearray(gzip.compress(TEXT.encode()))
    data[100:140] = b"\x00" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not a valid gzip stream \(corrupt data\)$"):
        read_all(path)
