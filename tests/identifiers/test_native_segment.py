"""The C kernels segment/ calls against their numpy definitions: the CSV field-count scan
(``ragged_scan`` against ``locate.field_counts``) and deduplication's pass after the sort
(``unique_sorted`` inside ``encode.deduplicate``, against the same function with the extension
switched off).

Every test runs the C code and the reference on the same inputs and compares; none asserts a
fixed number. ``.ci/sanitize`` runs this file under ASan and UBSan.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.segment import encode
from spotify_audience_sync.segment.locate import field_counts, ragged_rows

native = pytest.importorskip("spotify_audience_sync._native")

Scan = tuple[int, int, int, int, int]
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


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


# ------------------------------------------------------------------------- deduplication ---


def _digests(rng: np.random.Generator, n: int) -> np.ndarray:
    return HEX[rng.integers(0, 16, size=(n, 64))].astype(np.uint8)


def _records(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """n records of a layout: a digest (64), or a lead mask byte and one digest per type
    (absent ones zero, as encode.to_blocks leaves them)."""
    if width == 64:
        return _digests(rng, n)
    types = (width - 1) // 64
    records = np.zeros((n, width), dtype=np.uint8)
    records[:, 0] = rng.integers(1, 1 << types, size=n)
    for i in range(types):
        present = (records[:, 0] & (1 << i)) != 0
        records[present, 1 + 64 * i : 65 + 64 * i] = _digests(rng, int(present.sum()))
    return records


def _one_partition(records: np.ndarray) -> np.ndarray:
    """Every record's lead digest in one partition (the same top six bits), as staging's are."""
    width = records.shape[1]
    if width == 64:
        records[:, 0] = ord("a")
        records[:, 1] = ord("4")
        return records
    for i in range((width - 1) // 64):
        present = (records[:, 0] & (1 << i)) != 0
        records[present, 1 + 64 * i] = ord("a")
        records[present, 2 + 64 * i] = ord("4")
    return records


def assert_dedup_agrees(records: np.ndarray) -> np.ndarray:
    """deduplicate with the C pass, and with numpy's: the same array, byte for byte; and the
    distinct records, each once."""
    fast = encode.deduplicate(records)
    hashing.use_native(False)
    try:
        slow = encode.deduplicate(records)
    finally:
        hashing.use_native(True)
    assert fast.dtype == slow.dtype == np.uint8
    assert fast.shape == slow.shape
    assert fast.flags.c_contiguous
    assert fast.tobytes() == slow.tobytes()
    distinct = {bytes(row) for row in records}
    assert len(fast) == len(distinct)
    assert {bytes(row) for row in fast} == distinct
    return fast


WIDTHS = [64, 65, 129, 193]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("partition", [True, False], ids=["one-partition", "any-partition"])
@pytest.mark.parametrize("n", [2, 3, 100, 20_000])
def test_dedup_in_c_is_numpys_with_30_percent_duplicates(
    width: int, partition: bool, n: int
) -> None:
    rng = np.random.default_rng(n + width)
    base = _records(rng, max(1, int(n * 0.7)), width)
    records = base[rng.integers(0, len(base), size=n)]
    assert_dedup_agrees(_one_partition(records) if partition else records)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("n", [2, 5_000])
def test_dedup_in_c_of_all_duplicates_and_of_none(width: int, n: int) -> None:
    rng = np.random.default_rng(width)
    one = _records(rng, 1, width)
    assert len(assert_dedup_agrees(np.repeat(one, n, axis=0))) == 1
    assert len(assert_dedup_agrees(_records(rng, n, width))) == n


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("shared", [15, 16, 40], ids=lambda k: f"{k}-hex-chars-shared")
def test_dedup_in_c_gives_records_that_share_their_key_to_the_exact_path(
    width: int, shared: int
) -> None:
    """Different records whose lead digests share their first 15 hex digits (a key that
    differs in its last bits only, which the sort drops), 16 (the whole key) or 40: the C
    pass must say so, and both engines end in _exact's answer; duplicates among them too."""
    rng = np.random.default_rng(shared)
    records = _records(rng, 3_000, width)
    common = _digests(rng, 1)[0, :shared]
    twins = records[:40].copy()
    for row in twins:
        lead = 0
        if width > 64:  # the lead digest is the first present one
            bit = int(row[0]) & -int(row[0])
            lead = 1 + 64 * (bit.bit_length() - 1)
        row[lead : lead + shared] = common
    mixed = np.concatenate([records, twins, twins[:10]])
    mixed = mixed[rng.permutation(len(mixed))]
    assert_dedup_agrees(mixed)


def _hex_strings(draw: st.DrawFn, count: int, length: int) -> list[bytes]:
    return [
        draw(st.binary(min_size=length, max_size=length).map(lambda b: b.hex()[:length].encode()))
        for _ in range(count)
    ]


@st.composite
def colliding_records(draw: st.DrawFn) -> np.ndarray:
    """Records built from few 16-digit key prefixes and few suffixes: ties of every kind
    (equal records, equal keys with different records, keys equal but for the low bits)."""
    heads = [h[:15] + draw(st.sampled_from([b"0", b"1", b"f"])) for h in _hex_strings(draw, 3, 16)]
    tails = _hex_strings(draw, 3, 48)
    picks = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=60))
    wide = draw(st.booleans())
    rows = [heads[h] + tails[t] for h, t in picks]
    records = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 64)
    if wide:
        lead = np.full((len(records), 1), 1, dtype=np.uint8)
        records = np.hstack([lead, records, np.zeros_like(records)])
    return records


@settings(max_examples=200, deadline=None)
@given(colliding_records())
def test_dedup_in_c_is_numpys_on_generated_collisions(records: np.ndarray) -> None:
    assert_dedup_agrees(records)


def _packed(records: np.ndarray) -> tuple[np.ndarray, int]:
    """What deduplicate hands unique_sorted: sorted key|index words, and the index bits."""
    n = len(records)
    bits = max(1, (n - 1).bit_length())
    key = encode._sort_key(records) >> np.uint64(bits) << np.uint64(bits)
    return np.sort(key | np.arange(n, dtype=np.uint64)), bits


def test_unique_sorted_says_when_different_records_share_a_key() -> None:
    records = _digests(np.random.default_rng(5), 4)
    records[1, :16] = records[0, :16]  # the same key, different records
    packed, bits = _packed(records)
    assert native.unique_sorted(records, 4, 64, packed, bits, np.empty_like(records)) == -1
    records[1] = records[0]  # now equal: one of the two is dropped
    packed, bits = _packed(records)
    out = np.empty_like(records)
    assert native.unique_sorted(records, 4, 64, packed, bits, out) == 3


def test_unique_sorted_refuses_bad_arguments() -> None:
    records = _digests(np.random.default_rng(6), 3)
    packed, bits = _packed(records)
    out = np.empty_like(records)
    wrong = packed.copy()
    wrong[2] |= np.uint64(3)  # index 3 of 3 records
    with pytest.raises(ValueError, match="index is not below n"):
        native.unique_sorted(records, 3, 64, wrong, bits, out)
    misaligned = memoryview(bytearray(25))[1:]
    misaligned[:] = packed.tobytes()
    with pytest.raises(ValueError, match="packed buffer must start on a 8-byte boundary"):
        native.unique_sorted(records, 3, 64, misaligned, bits, out)
    with pytest.raises(ValueError, match="records shorter"):
        native.unique_sorted(records, 4, 64, packed, bits, out)
    with pytest.raises(ValueError, match="packed shorter"):
        native.unique_sorted(records, 3, 64, packed[:2], bits, out)
    with pytest.raises(ValueError, match="out buffer too small"):
        native.unique_sorted(records, 3, 64, packed, bits, out[:2])
    for n, width, b in ((-1, 64, bits), (3, 0, bits), (3, 64, 0), (3, 64, 64)):
        with pytest.raises(ValueError, match="bad record shape"):
            native.unique_sorted(records, n, width, packed, b, out)
    assert native.unique_sorted(records, 3, 64, packed, bits, out) == 3


def test_both_kernels_run_on_two_threads_at_once() -> None:
    """The pipeline's worker threads call them concurrently (the GIL is released in both)."""
    chunk = _csv(20_000, 4)
    rng = np.random.default_rng(9)
    base = _records(rng, 20_000, 64)
    records = base[rng.integers(0, len(base), size=30_000)]
    expected = (native.ragged_scan(chunk, ord(","), 3), encode.deduplicate(records).tobytes())
    failures: list[str] = []

    def work() -> None:
        for _ in range(10):
            got = (native.ragged_scan(chunk, ord(","), 3), encode.deduplicate(records).tobytes())
            if got != expected:
                failures.append("different answer")

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
