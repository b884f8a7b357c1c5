"""The C kernels segment/ calls against their numpy definitions: the CSV field-count scan
(``ragged_scan`` against ``locate.field_counts``).

Every test runs the C code and the reference on the same inputs and compares; none asserts a
fixed number. ``.ci/sanitize`` runs this file under ASan and UBSan.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.segment.locate import field_counts, ragged_rows

native = pytest.importorskip("spotify_audience_sync._native")

Scan = tuple[int, int, int, int, int]


# ------------------------------------------------------------------ the field-count scan ---


def reference(chunk: bytes, delimiter: str, width: int) -> Scan:
    """What ragged_scan must answer, from numpy's per-record field counts."""
    fields = field_counts(chunk, delimiter)
    long = np.flatnonzero(fields.counts > width)
    first = (
        (int(long[0]), int(fields.counts[long[0]]), int(fields.starts[long[0]]))
        if len(long)
        else (-1, -1, -1)
    )
    return (len(fields.counts), int(np.count_nonzero(fields.counts < width)), *first)


def assert_scans_agree(chunk: bytes, delimiter: str, widths: range = range(6)) -> None:
    """Both mask builders (SSE2 where there is one, and plain C) give numpy's answer."""
    for width in widths:
        expected = reference(chunk, delimiter, width)
        try:
            for portable in (False, True):
                native.use_portable(portable)
                got = native.ragged_scan(chunk, ord(delimiter), width)
                assert got == expected, (portable, width)
        finally:
            native.use_portable(False)


EDGES = [
    pytest.param(b"", id="empty-chunk"),
    pytest.param(b"\n", id="one-blank-line"),
    pytest.param(b"\n\n\n", id="blank-lines"),
    pytest.param(b"a,b\n\nc,d\n", id="a-blank-line-between"),
    pytest.param(b"a,b\nc,d", id="no-final-newline"),
    pytest.param(b"a,b,c,d,e\n", id="one-long-record"),
    pytest.param(b"a\nb,c\nd,e,f\ng,h,i,j\n", id="widths-growing"),
    pytest.param(b'"a,b",c\n', id="delimiter-in-quotes"),
    pytest.param(b'"a\nb",c\nd\n', id="quoted-newline"),
    pytest.param(b'"a""b",c\n""""\n', id="escaped-quotes"),
    pytest.param(b'a,"b,c\n', id="unclosed-quote-then-final-newline"),
    pytest.param(b'a,"b,c', id="unclosed-quote-no-newline"),
    pytest.param(b'a,b"c,d"e,f\n', id="quote-inside-an-unquoted-value"),
    pytest.param(b"a,b\r\nc,d,e\r\n", id="crlf"),
    pytest.param(b'x,"\n\n\n",y\n,,,\n', id="quoted-blank-lines"),
    pytest.param(b",,,,\n,\n", id="only-delimiters"),
    pytest.param("é,€,😀\n\u00e9\n".encode(), id="multibyte-utf8"),
    pytest.param(b"a\x00b,c\x00\n\x00", id="nul-bytes"),
]


@pytest.mark.parametrize("chunk", EDGES)
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_ragged_scan_is_field_counts_on_every_edge(chunk: bytes, delimiter: str) -> None:
    assert_scans_agree(chunk.replace(b",", delimiter.encode()), delimiter)


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_ragged_scan_is_field_counts_across_block_boundaries(delimiter: str) -> None:
    """Quotes, delimiters and newlines at every offset around the 64-byte blocks the scan
    reads (a quote state carried from one block into the next, a record ending on a block's
    last byte, a final partial block)."""
    d = delimiter.encode()
    pieces = [b'"', b"\n", d, b'""', b'"' + d + b"\n" + b'"', b"\n" + d]
    for offset in range(140):
        for piece in pieces:
            for tail in (b"", b"\n", b"x" + d + b"y"):
                chunk = b"a" * offset + piece + b"b" * (offset % 7) + tail
                assert_scans_agree(chunk, delimiter, range(1, 4))


TOKENS = [b"a", b'"', b'""', b"\n", b",", b";", b"\t", b"|", b"\r", b"x" * 13, "€".encode()]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=300),
    st.sampled_from([",", ";", "\t", "|"]),
)
def test_ragged_scan_is_field_counts_on_generated_chunks(
    tokens: list[bytes], delimiter: str
) -> None:
    assert_scans_agree(b"".join(tokens), delimiter)


def _csv(rows: int, seed: int) -> bytes:
    """A CSV body like an export: mostly plain rows, some quoted values with delimiters,
    escaped quotes and newlines, some short and some long rows."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        cells = [f"user{i}@example.com", f"+1 201 555 {i % 10000:04d}", str(i)]
        kind = rng.random()
        if kind < 0.05:
            cells[2] = '"a, ""quoted""\nnote"'
        elif kind < 0.07:
            cells = cells[: rng.randint(0, 2)]
        elif kind < 0.08:
            cells.append("extra")
        lines.append(",".join(cells))
    return ("\n".join(lines) + ("\n" if seed % 2 else "")).encode()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ragged_scan_is_field_counts_on_a_big_chunk_read_from_any_address(seed: int) -> None:
    chunk = _csv(20_000, seed)
    assert_scans_agree(chunk, ",", range(2, 5))
    for start in (1, 3, 7):  # a buffer that does not start on a word boundary
        view = memoryview(chunk)[start:]
        assert native.ragged_scan(view, ord(","), 3) == reference(bytes(view), ",", 3)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("delimiter", [",", ";", "€"])
def test_ragged_rows_is_the_same_with_the_extension_switched_off(seed: int, delimiter: str) -> None:
    """What TextBatch uses: the C scan, or numpy's field counts (also for a delimiter the
    scan does not take, a character of more than one byte)."""
    chunk = _csv(3_000, seed).replace(b",", delimiter.encode())
    answers = []
    for enabled in (True, False):
        hashing.use_native(enabled)
        try:
            ragged = ragged_rows(chunk, delimiter, 3)
        finally:
            hashing.use_native(True)
        answers.append((ragged.short, ragged.long))
    assert answers[0] == answers[1]
    _, short, index, fields, start = reference(chunk, delimiter, 3)
    assert answers[0] == (short, None if index < 0 else (index, fields, start))


@pytest.mark.parametrize(
    ("delimiter", "width"), [(ord('"'), 2), (ord("\n"), 2), (256, 2), (-1, 2), (44, -1)]
)
def test_ragged_scan_refuses_a_quote_or_newline_delimiter_and_bad_widths(
    delimiter: int, width: int
) -> None:
    with pytest.raises(ValueError, match="delimiter must be a byte"):
        native.ragged_scan(b"a,b\n", delimiter, width)
