"""The C extension against its definitions: hashlib for SHA-256, the polars rules for emails.

Every test here runs the C code and the reference on the same inputs and compares; none
asserts a fixed number. Skipped as a whole only where the extension was not built (a machine
without a C compiler), and then the polars path is what runs everywhere.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.identifiers.normalize import (
    CODES,
    IdentifierType,
    NormalizeOptions,
    email_identifiers,
    hash_batch,
    hash_frame,
    status_column,
)
from spotify_audience_sync.identifiers.phones import native as phones_native
from spotify_audience_sync.identifiers.phones.exact import parse_exact
from spotify_audience_sync.segment import staging
from spotify_audience_sync.segment.encode import _sort_key, first_byte
from spotify_audience_sync.settings import NO_NATIVE_ENV

native = pytest.importorskip("spotify_audience_sync._native")
EMAIL, PHONE = IdentifierType.EMAIL, IdentifierType.PHONE


@pytest.fixture(params=["sha-ni", "portable"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both SHA-256 cores: the CPU's SHA instructions (where it has them) and plain C."""
    if request.param == "sha-ni":
        native.use_portable(False)
        if not native.accelerated():
            pytest.skip("this CPU has no SHA instructions")
    else:
        native.use_portable(True)
    yield request.param
    native.use_portable(False)


def rows(matrix: np.ndarray) -> list[str]:
    return [bytes(row).decode() for row in matrix]


def test_the_kernels_status_codes_are_the_rules_codes() -> None:
    """The C email kernel numbers statuses 0-3 itself; they must be identifiers' STATUS codes."""
    assert [CODES["hashed"], CODES["prehashed"], CODES["empty"], CODES["malformed"]] == [0, 1, 2, 3]
    assert hashing.EMAIL_DEFER not in CODES.values()


def test_sha256_matches_hashlib_at_every_padding_boundary(engine: str) -> None:
    """Lengths 0-300 cross the one-block (55), two-block and inline-view (12) boundaries;
    single-block values are hashed two at a time, so odd and even counts both occur."""
    rng = random.Random(7)
    values = ["".join(rng.choice("ab€😀z") for _ in range(n)) for n in range(301)]
    values += ["x" * n for n in range(130)]
    for count in (1, 2, 3, len(values)):
        series = pl.Series(values[:count])
        expected = [hashlib.sha256(v.encode()).hexdigest() for v in values[:count]]
        assert rows(hashing.sha256_matrix(series)) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=90), min_size=1, max_size=40), st.integers(0, 5))
def test_sha256_of_a_slice_reads_the_right_views(values: list[str], start: int) -> None:
    series = pl.Series(values).slice(start)
    expected = [hashlib.sha256(v.encode()).hexdigest() for v in values[start:]]
    assert rows(hashing.sha256_matrix(series)) == expected


def test_malformed_views_are_refused_not_read() -> None:
    views = np.zeros((1, 4), dtype=np.uint32)
    views[0] = [40, 0, 3, 0]  # 40 bytes in data buffer 3, of which there is none
    out = np.empty(64, np.uint8)
    with pytest.raises(ValueError, match="outside its data buffers"):
        native.sha256_hex(views.tobytes(), None, [b"x" * 64], 0, 1, out)
    with pytest.raises(ValueError, match="shorter"):
        native.sha256_hex(views.tobytes(), None, [], 1, 1, out)
    with pytest.raises(ValueError, match="too small"):
        native.sha256_hex(bytes(16), None, [], 0, 1, np.empty(10, np.uint8))
    with pytest.raises(ValueError, match="small non-negative"):  # offset + n would overflow
        native.sha256_hex(bytes(32), None, [], 2**62 + 2**36, 2**62, bytearray(0))
    with pytest.raises(ValueError, match="validity bitmap"):
        native.sha256_hex(bytes(16 * 9), b"\xff", [], 0, 9, np.empty(9 * 64, np.uint8))


def test_a_null_slot_is_empty_whatever_its_view_holds() -> None:
    """Arrow leaves a null's view undefined (pyarrow-built arrays may hold garbage there):
    it is never followed, and the value counts as empty, as in the polars rules."""
    data = b"y" * 20 + b"@example.com"
    views = (
        struct.pack("<I4sII", len(data), data[:4], 0, 0)
        + struct.pack("<I4sII", 1000, b"zzzz", 7, 123456)  # null, pointing nowhere
        + struct.pack("<I12s", 5, b"a@b.c")
    )
    array = pa.Array.from_buffers(
        pa.string_view(), 3, [pa.py_buffer(bytes([5])), pa.py_buffer(views), pa.py_buffer(data)]
    )
    values = pl.from_arrow(array)
    assert isinstance(values, pl.Series)
    assert kernel(values.to_list(), False) == reference(values.to_list(), False)
    batch = pl.DataFrame({"v": values})
    hashed = hash_batch(batch, {EMAIL: "v"}, NormalizeOptions())
    assert hashed.codes[EMAIL].tolist() == [CODES["hashed"], CODES["empty"], CODES["hashed"]]


def accepted_rows(matrix: np.ndarray, accepted: np.ndarray) -> list[str | None]:
    """Digests where accepted (other rows of the matrix are undefined), None elsewhere."""
    return [bytes(row).decode() if ok else None for row, ok in zip(matrix, accepted, strict=True)]


Found = tuple[list[int], list[int], list[str | None]]


def reference(values: list[str | None], gmail: bool) -> Found:
    """The polars rules (the definition) and polars-hash: each identifier's row, code and
    digest (a cell holding several addresses gives several)."""
    hashing.use_native(False)
    try:
        options = NormalizeOptions(gmail_canonical=gmail)
        found, _ = email_identifiers(pl.Series(values, dtype=pl.String), options)
        hashes = hash_frame(found, EMAIL)
    finally:
        hashing.use_native(True)
    codes = found[status_column(EMAIL)].to_physical().to_list()
    return found["_row"].to_list(), codes, accepted_rows(hashes.matrix, hashes.accepted)


def kernel(values: list[str | None], gmail: bool) -> Found:
    """hash_batch (the C kernel, polars for what it defers): the same, row by row."""
    batch = pl.DataFrame({"v": values}, schema={"v": pl.String})
    hashed = hash_batch(batch, {EMAIL: "v"}, NormalizeOptions(gmail_canonical=gmail))
    hashes = hashed.hashes[EMAIL]
    rows = list(range(len(values)))
    codes, digests = hashed.codes[EMAIL].tolist(), accepted_rows(hashes.matrix, hashes.accepted)
    extra = hashed.extra.get(EMAIL)
    if extra is None:
        return rows, codes, digests
    more = accepted_rows(extra.hashes.matrix, extra.hashes.accepted)
    found = [*zip(rows, codes, digests, strict=True)]
    found += zip(extra.rows.tolist(), extra.codes.tolist(), more, strict=True)
    found.sort(key=lambda t: t[0])  # stable: each cell's first address stays first
    return [r for r, _, _ in found], [c for _, c, _ in found], [d for _, _, d in found]


#: Values at the edges of each rule, and every code point the kernel decides itself.
EDGES = [
    None,
    "",
    "   ",
    "a@b.c",
    "A@B.C",
    " \tUser.Name+tag@Example.COM\r\n",
    "a@b",
    "@b.c",
    "a@.b.c",
    "a@b..c",
    "a@b.c.",
    "a@@b.c",
    "a@b@c.d",
    "a b@c.d",
    "a\x00@c.d",
    "a\x7f@c.d",
    "a\x1c@c.d",
    "a@c.d\x1f",
    "\x1fa@c.d",
    "a.@c.d",
    ".a@c.d",
    "a@c.d\n",
    "a@c\n.d",
    "0" * 64,
    "A" * 64,
    "g" + "0" * 63,
    "0" * 63,
    "0" * 65,
    " " + "AbCdEf0123" * 6 + "abcd ",
    "x" * 400 + "@example.com",
    "J.O.H.N+news@gmail.com",
    "john+a+b@GoogleMail.com",
    "+x@gmail.com",
    "...@gmail.com",
    "a+b c@gmail.com",
    "a b+c@gmail.com",
    "a+b\nc@gmail.com",
    "a\n+b@gmail.com",
    "a@gmail.com.",
    "a.b@gmail.co",
    "\u00a0a@b.c",
    "a@b.c\u00a0",
    "\u0085a@b.c",
    "a@b.c\u0085",
    "a\u00a0b@c.d",
    "a\u00adb@c.d",
    "a\u2003@b.c",
    "\u2003a@b.c\u3000",
    "ÜBER@MÜLLER.DE",
    "İstanbul@example.com",
    "ǅ@example.com",
    "ΣΑΣ@example.com",
    "😀@example.com",
    "a@例え.jp",
    # Issue 27's shapes, and their near misses: the kernel defers them all.
    "mailto:ana@example.com",
    "MAILTO:ana@example.com?subject=x",
    "mailto:",
    '"ana"@example.com',
    '"ana smith"@example.com',
    "John Smith <John.Smith@Example.com>",
    '"Smith, John" <j@x.com>, Bo <MAILTO:b@y.com>',
    "John <>",
    "a<b@c.d",
    "ana@example.com;bo@example.com",
    "ana@example.com, bo@example.com;",
    "ana@example.com bo@example.com",
    "ana smith@example.com",
    "a@b.c;d",
    "ANA@EXAMPLE.COM\u200b",
    "\ufeffana@exa\u00admple.com\u2060",
    "ana\uff20example.com",
    "".join(chr(ord(c) + 0xFEE0) for c in "ANA@EXAMPLE.COM"),  # fullwidth
    "ana@example.com.",
    "ana@example.com..",
    "a(b)@c.d",
    "a@[1.2.3.4]",
    "a\\b@c.d",
    "a:b@c.d",
    "x" * 60 + ",@b.c",
    "a@b.c,",
]
EDGES += [f"x{chr(cp)}y@{chr(cp)}.example.com" for cp in range(0x80, 0x250)]
EDGES += [f"{chr(cp)}@b.c" for cp in range(0x80, 0x180)]


@pytest.mark.parametrize("gmail", [False, True], ids=["plain", "gmail-canonical"])
def test_kernel_agrees_with_the_rules_on_every_edge(gmail: bool, engine: str) -> None:
    assert kernel(EDGES, gmail) == reference(EDGES, gmail)


_CHARS = st.sampled_from(
    [
        *"aAzZ09.+@ -_\t\n\r\x00\x1f\x7f",
        *["\u00a0", "\u0085", "\u00ad", "ü", "Ü", "İ", "ß"],
        *'<>"():;,[]\\',
        *["\u200b", "\ufeff", "\uff20", "\u00aa", "\u017f"],
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(_CHARS, max_size=24),
            st.text(max_size=24),
            st.builds(
                lambda a, b, c: f"{a}@{b}.{c}",
                st.text(_CHARS, max_size=8),
                st.text(_CHARS, max_size=8),
                st.sampled_from(["com", "COM", "c", ""]),
            ),
            st.builds(
                lambda a, d: f"{a}@{d}",
                st.text(_CHARS, max_size=10),
                st.sampled_from(["gmail.com", "GMAIL.com", "googlemail.com", "gmail.com "]),
            ),
            st.builds(  # issue 27's shapes: lists, schemes, display names
                lambda parts, sep, wrap: sep.join(wrap.format(p) for p in parts),
                st.lists(st.text(_CHARS, max_size=12).map(lambda a: f"{a}@x.com"), max_size=3),
                st.sampled_from([";", ", ", " ", ","]),
                st.sampled_from(["{}", "mailto:{}", "Name <{}>", '"N, M" <{}>', "{}."]),
            ),
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_kernel_agrees_with_the_rules_on_generated_values(
    values: list[str | None], gmail: bool
) -> None:
    assert kernel(values, gmail) == reference(values, gmail)


@pytest.mark.parametrize("gmail", [False, True], ids=["plain", "gmail-canonical"])
def test_kernel_agrees_with_the_rules_at_every_length_and_position(gmail: bool) -> None:
    """The 64-byte SIMD path tests bits of masks: '@' and dots at every position, values of
    every length around its 64-byte limit, banned bytes anywhere."""
    rng = random.Random(11)
    values: list[str | None] = []
    for length in range(1, 72):
        for _ in range(60):
            chars = rng.choices(
                "aZ9.@_-+\x7f\t ü", weights=[30, 5, 5, 10, 2, 1, 1, 1, 1, 1, 1, 1], k=length
            )
            values.append("".join(chars))
        for at in range(length):
            local, domain = "x" * at, "d" * max(0, length - at - 5)
            values.append(f"{local}@{domain}.com"[:length] if at else f"@{domain}.com")
            values.append(f"{local}@{domain}.gmail.com")
    values += ["a" * n + "@gmail.com" for n in range(50, 60)]
    assert kernel(values, gmail) == reference(values, gmail)


def test_the_kernel_decides_no_value_a_repair_would_touch() -> None:
    """Whatever a repair changes is the polars rules' to decide: the kernel defers it."""
    from spotify_audience_sync.identifiers.emails import REPAIRS, pieces

    values = [v for v in EDGES if v is not None]
    values += [f"{a}{sep}{b}" for a, b in itertools.pairwise(values[:40]) for sep in ";, "]
    stripped = pl.Series(values).str.strip_chars()
    found = pieces(stripped).group_by("_row").agg(pl.any_horizontal(REPAIRS).any().alias("any"))
    touched = found.filter(pl.col("any"))["_row"].to_list()
    result = hashing.email_kernel(pl.Series(values), False)
    assert result is not None
    assert touched
    assert all(result[0][row] == hashing.EMAIL_DEFER for row in touched)


def test_the_whole_batch_is_the_same_file_on_both_engines() -> None:
    """hash_batch with the kernel on and off: same codes, same digests, row for row."""
    rng = random.Random(3)
    values: list[str | None] = [
        rng.choice(EDGES) if rng.random() < 0.3 else f"  User{i}@Müller{i % 7}.de "
        for i in range(5_000)
    ]
    assert kernel(values, False) == reference(values, False)


FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"


def _prepare(tmp_path: Path, name: str, args: list[str], *, native_on: bool) -> tuple[bytes, dict]:
    env = {k: v for k, v in os.environ.items() if k != NO_NATIVE_ENV}
    if not native_on:
        env[NO_NATIVE_ENV] = "1"
    out, report = tmp_path / f"{name}.csv", tmp_path / f"{name}.json"
    command = [sys.executable, "-m", "spotify_audience_sync", "prepare", str(FIXTURE)]
    command += ["--output", str(out), "--report", str(report), "-q", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    counts = json.loads(report.read_text())
    counts.pop("seconds")
    counts.pop("rows_per_second", None)
    counts.pop("output")
    # Which values libphonenumber itself had to decide depends on the engine; nothing else.
    counts["identifiers"].get("phone", {}).pop("fallback", None)
    return out.read_bytes(), counts


@pytest.mark.parametrize(
    "args", [[], ["--layout", "wide", "--gmail-canonical"]], ids=["type-value", "wide-gmail"]
)
def test_prepare_writes_the_same_file_with_the_extension_switched_off(
    tmp_path: Path, args: list[str]
) -> None:
    """The escape hatch (SPOTIFY_AUDIENCE_SYNC_NO_NATIVE=1) changes nothing but speed."""
    fast = _prepare(tmp_path, "fast", args, native_on=True)
    slow = _prepare(tmp_path, "slow", args, native_on=False)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[0].count(b"\n") > 1_000


FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
PHONES = [
    None,
    "",
    "  ",
    "n/a",
    "+",
    "212 555 0123",
    "(212) 555-0123",
    "1 212 555 0123",
    "+1 212 555 0123",
    "011 44 20 7946 0958",
    "011",
    "0114420",
    "+44 (0)20 7946 0958",
    "+49-(0)151-23015838",
    "+55 11 96148 3059",
    "+61 412 617 682",
    "+7 701 123 4567",
    "+800 1234 5678",
    "212 555 0123 ext. 12",
    "1-800-FLOWERS",
    "+1 212 555 0123;ext=1",
    "212 555 0123".translate(FULLWIDTH),
    "0" * 64,
    "ab" * 32,
    "+999 123",
    "+0 123 456",
    "12",
]


@pytest.mark.parametrize("region", ["US", "GB", "KZ", "AR", "DE"])
def test_phones_hash_the_same_on_both_engines(region: str) -> None:
    """The pipeline's phone path (C: E.164 and SHA-256 in one pass, the rest deferred to the
    polars rules) against the polars rules alone: the same status and digest on every row,
    and libphonenumber's own share still counted."""
    rng = random.Random(5)
    values: list[str | None] = list(PHONES)
    for _ in range(3_000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 14)))
        head = rng.choice(["", "+", "+1 ", "+44 ", "+49 ", "00", "011 ", "0", "(", "8 "])
        values.append(head + rng.choice(["", " ", "-"]).join([digits[:3], digits[3:]]))
    batch = pl.DataFrame({"p": values}, schema={"p": pl.String})
    options = NormalizeOptions(default_region=region)
    on = hash_batch(batch, {PHONE: "p"}, options)
    hashing.use_native(False)
    try:
        off = hash_batch(batch, {PHONE: "p"}, options)
    finally:
        hashing.use_native(True)
    assert on.codes[PHONE].tolist() == off.codes[PHONE].tolist()
    for got, expected in ((on, off),):
        assert accepted_rows(got.hashes[PHONE].matrix, got.hashes[PHONE].accepted) == (
            accepted_rows(expected.hashes[PHONE].matrix, expected.hashes[PHONE].accepted)
        )
    assert 0 < on.phone_fallback <= off.phone_fallback


@pytest.mark.parametrize(
    ("value", "region"),
    [
        *(("1-201-555-0123", "US"), ("12015550123", "US"), ("1 (201) 555-0123", "US")),
        *(("1.201.555.0123", "US"), ("112015550123", "US"), ("1 613 555 0123", "CA")),
        *(("44 20 7946 0958", "GB"), ("44 020 7946 0958", "GB"), ("49 30 1234567", "DE")),
        *(("33 1 23 45 67 89", "FR"), ("39 06 1234 5678", "IT"), ("91 98765 43210", "IN")),
        *(("52 55 1234 5678", "MX"), ("7 8 495 123 45 67", "RU"), ("36 06 1 234 5678", "HU")),
        # The rest is no better a number: a national number of the default region after all.
        ("49 030 1234567", "DE"),
        # Invalid either way: too short, too long for +1.
        *(("1201555012", "US"), ("1 201 555 01234", "US")),
    ],
)
def test_the_kernel_decides_numbers_that_start_with_the_default_calling_code(
    value: str, region: str
) -> None:
    """What libphonenumber makes of "1-201-555-0123" in the US (the calling code taken off, or
    not) is decided in C, not deferred (the common form of US exports, issue #24)."""
    decided = phones_native.decide(pl.Series([value]), region, (0, 1, 2, 3), hashes=False)
    assert decided is not None
    status, out = int(decided.codes[0]), decided.out[0]
    assert status != phones_native.DEFER
    got = (bytes(out[1 : 1 + out[0]]).decode(), None) if status == 0 else (None, "invalid_number")
    assert got == parse_exact(value, region, "valid")


def test_the_extension_is_built_from_this_source() -> None:
    """An editable install keeps an old in-place build when a rebuild fails (the extension is
    optional): then these tests would test old code. ``uv sync`` rebuilds on source changes.
    The sources (every .c file and the shared header) sit in the _native/ folder beside it."""
    built = Path(native.__file__)
    sources = [*built.with_name("_native").glob("*.[ch]")]
    if not sources:  # installed from a wheel: no source beside it
        pytest.skip("not an editable install")
    newest = max(source.stat().st_mtime for source in sources)
    assert built.stat().st_mtime >= newest, "rebuild: uv sync --reinstall"


def test_compiled_phone_tables_are_cached_and_a_bad_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def same(a: phones_native._CodeTables, b: phones_native._CodeTables) -> bool:
        arrays = ("trans", "accept", "regions", "np_text")
        return (a.state, a.keys) == (b.state, b.keys) and all(
            np.array_equal(getattr(a, name), getattr(b, name)) for name in arrays
        )

    monkeypatch.setattr(phones_native, "_cache_root", None)  # restored after the test
    phones_native.use_cache_dir(str(tmp_path))
    fresh = phones_native._build_code(44)
    first = phones_native._cached_code(44)
    [saved] = list(tmp_path.rglob("44.npz"))
    assert same(first, fresh)
    assert same(phones_native._cached_code(44), fresh)  # read back
    for broken in (b"not an npz file", b""):
        saved.write_bytes(broken)
        assert same(phones_native._cached_code(44), fresh)  # rebuilt, and written again
        assert same(phones_native._cached_code(44), fresh)
    other = phones_native._build_code(49)  # whole, but another code's: not used for +44
    saved.write_bytes((next(tmp_path.rglob("44.npz"))).read_bytes())
    phones_native._cached_code(49)
    saved.write_bytes(next(tmp_path.rglob("49.npz")).read_bytes())
    assert same(phones_native._cached_code(44), fresh)
    assert not same(other, fresh)
    phones_native.use_cache_dir("")  # off: nothing read or written
    saved.unlink()
    assert same(phones_native._cached_code(44), fresh)
    assert not saved.exists()
    assert phones_native._build_code(800).state == phones_native._CC_DEFER  # non-geographic


@pytest.mark.parametrize("n", [0, 1, 7, 5_000])
def test_partition_rows_stage_exactly_what_the_numpy_path_stages(n: int) -> None:
    """The C counting sort: the same partitions, the same records, in the same order."""
    rng = np.random.default_rng(n)
    hexes = rng.integers(0, 16, size=(n, 64))
    matrix = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[hexes].astype(np.uint8)
    accepted = rng.random(n) < 0.8
    got = staging.partition_rows(matrix, accepted)
    hashing.use_native(False)
    try:
        without = staging.partition_rows(matrix, accepted)  # the numpy way
    finally:
        hashing.use_native(True)
    records = matrix[accepted]
    expected = staging.partition_payload(records, first_byte(records[:, :2]))
    for result in (got, without):
        assert sorted(result) == sorted(expected)
        for key, rows in expected.items():
            assert np.array_equal(result[key], rows)


@pytest.mark.parametrize("width", [64, 65])
def test_sort_keys_in_c_are_numpys(width: int) -> None:
    rng = np.random.default_rng(width)
    alphabet = np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)
    records = alphabet[rng.integers(0, 22, size=(3_000, width))].astype(np.uint8)
    fast = _sort_key(records)
    hashing.use_native(False)
    try:
        slow = _sort_key(records)
    finally:
        hashing.use_native(True)
    assert fast.dtype == slow.dtype == np.uint64
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize(
    "pattern", ["0", "0|180020", "(183[12])|0", "0?", "1?1", "(?:0|01){0,2}", "(?:0|01){0,2}?"]
)
def test_prefix_literals_are_what_re_match_finds(pattern: str) -> None:
    """The first listed literal that starts a number is the prefix re.match takes from it
    (backtracking order, greedy and lazy), on every string of up to 5 of these digits."""
    literals = phones_native.prefix_literals(pattern)
    assert literals is not None
    for length in range(6):
        for chars in itertools.product("01289", repeat=length):
            number = "".join(chars)
            found = re.match(pattern, number)
            first = next((x for x in literals if number.startswith(x)), None)
            assert (found.end() if found else None) == (None if first is None else len(first))


def test_phone_tables_that_disagree_with_themselves_are_not_followed() -> None:
    """The home region naming a calling code whose tables are not loaded: deferred, never read
    through (the C code once followed cc_first of such a code)."""
    tables = phones_native._tables()
    home = tables.home("US")
    assert home is not None
    buffers = [b.copy() for b in tables.snapshot.buffers]
    buffers[2][home, 0] = 2  # calling code 2: unknown, so its first/count are never checked
    buffers[4][2], buffers[5][2] = 1 << 30, 1
    exported = hashing.views(pl.Series(["2125551234"]))
    assert exported is not None
    status, out, need = np.empty(1, np.uint8), np.empty((1, 24), np.uint8), np.empty(1, np.uint16)
    defaults, _ = phones_native._defaults(tables, ["US"])
    args = (defaults, np.zeros(0, np.uint16), 0, 1, 2, 3, 1, status, out, need)
    assert native.phones(*exported.args(), 1, tuple(buffers), *args) == 1
    assert status[0] == phones_native.DEFER


# The module's contract: direct calls with bad arguments get an exception, never undefined
# behaviour (a negative shift, a misaligned store, a read outside a table).


def _misaligned(size: int) -> memoryview:
    """A writable buffer of `size` bytes that starts one byte past an aligned address."""
    return memoryview(bytearray(size + 1))[1:]


def _hex_matrix(n: int) -> np.ndarray:
    hexes = np.random.default_rng(n).integers(0, 16, size=(n, 64))
    return np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[hexes].astype(np.uint8)


@pytest.mark.parametrize("lead", [b"/0", b"0/", b"\x00\x00", b"g0", b"\xff0", b":0", b"@0"])
def test_partition_order_refuses_an_accepted_row_that_is_not_hex(lead: bytes) -> None:
    """A byte below '0' once shifted a negative number; above 'f' it picked a wrong slot."""
    matrix = _hex_matrix(3)
    matrix[1, :2] = np.frombuffer(lead, np.uint8)
    order, counts = np.full(3, -1, np.int64), np.empty(64, np.int64)
    with pytest.raises(ValueError, match="two hex digits"):
        native.partition_order(matrix, np.ones(3, np.bool_), 3, order, counts)
    assert (order == -1).all()  # refused before anything was written
    # Not accepted: never read, so it may hold anything.
    assert native.partition_order(matrix, np.array([1, 0, 1], np.bool_), 3, order, counts) == 2


def test_partition_order_refuses_misaligned_outputs() -> None:
    matrix, accepted = _hex_matrix(4), np.ones(4, np.bool_)
    with pytest.raises(ValueError, match="order buffer must start on a 8-byte boundary"):
        native.partition_order(matrix, accepted, 4, _misaligned(32), np.empty(64, np.int64))
    with pytest.raises(ValueError, match="counts buffer must start on a 8-byte boundary"):
        native.partition_order(matrix, accepted, 4, np.empty(4, np.int64), _misaligned(512))
    with pytest.raises(ValueError, match="bad row count"):
        native.partition_order(matrix, accepted, -1, np.empty(4, np.int64), np.empty(64, np.int64))
    with pytest.raises(ValueError, match="shorter than n rows"):
        native.partition_order(matrix, accepted, 5, np.empty(5, np.int64), np.empty(64, np.int64))


def test_hex_keys_refuses_a_misaligned_output_and_reads_any_records() -> None:
    """The keys are stored as u64: a misaligned output is refused. Records are read bytewise,
    so a misaligned records buffer gives the same keys."""
    records = _hex_matrix(5)
    keys = np.empty(5, np.uint64)
    native.hex_keys(records, 5, 64, 0, keys)
    with pytest.raises(ValueError, match="keys buffer must start on a 8-byte boundary"):
        native.hex_keys(records, 5, 64, 0, _misaligned(40))
    shifted = _misaligned(records.size)
    shifted[:] = records.tobytes()
    again = np.empty(5, np.uint64)
    native.hex_keys(shifted, 5, 64, 0, again)
    assert np.array_equal(keys, again)
    for n, width, col in ((-1, 64, 0), (5, 15, 0), (5, 64, 49), (5, 64, -1)):
        with pytest.raises(ValueError, match="bad record shape"):
            native.hex_keys(records, n, width, col, keys)
    with pytest.raises(ValueError, match="shorter than n rows"):
        native.hex_keys(records, 6, 64, 0, np.empty(6, np.uint64))


@pytest.mark.parametrize("position", [0, 7, 8, 15])
@pytest.mark.parametrize("byte", [b"/", b":", b"@", b"G", b"`", b"g", b" ", b"\x00", b"\xe1"])
def test_hex_keys_refuses_a_non_hex_character(position: int, byte: bytes) -> None:
    records = _hex_matrix(3)
    records[2, 1 + position] = byte[0]
    with pytest.raises(ValueError, match=re.escape("non-hex character in columns 1..16")):
        native.hex_keys(records, 3, 64, 1, np.empty(3, np.uint64))
    native.hex_keys(records, 3, 64, 20, np.empty(3, np.uint64))  # outside the columns read


def _us_defaults(**fields: int) -> np.ndarray:
    """The kernel's default-region record for US, some of its bytes replaced."""
    defaults, usable = phones_native._defaults(phones_native._tables(), ["US"])
    assert usable
    home = int(np.frombuffer(defaults[0, :4].tobytes(), np.int32)[0])
    layout = {"national_ok": 4, "idd_len": 5, "dcc_len": 6}
    for name, value in fields.items():
        if name == "home":
            home = value
        else:
            defaults[0, layout[name]] = value
    defaults[0, :4] = np.frombuffer(np.int32(home).tobytes(), np.uint8)
    return defaults


def _phone_call(**change: object) -> tuple[object, ...]:
    """Arguments of native.phones for one plain US number, with some replaced."""
    tables = phones_native._tables()
    exported = hashing.views(pl.Series(["2125551234"]))
    assert exported is not None
    args: dict[str, object] = {
        "tables": tuple(tables.snapshot.buffers),
        "defaults": _us_defaults(),
        "rows": np.zeros(0, np.uint16),
        "codes": (0, 1, 2, 3),
        "mode": 1,
        "status": np.empty(1, np.uint8),
        "out": np.empty((1, 24), np.uint8),
        "need": np.empty(1, np.uint16),
    }
    args.update(change)
    codes = args["codes"]
    assert isinstance(codes, tuple)
    return (
        *exported.args(),
        1,
        args["tables"],
        args["defaults"],
        args["rows"],
        *codes,
        args["mode"],
        args["status"],
        args["out"],
        args["need"],
    )


def _misaligned_copy(array: np.ndarray) -> memoryview:
    copy = _misaligned(array.nbytes)
    copy[:] = array.tobytes()
    return copy


def test_phones_accepts_the_reference_arguments() -> None:
    status = np.empty(1, np.uint8)
    assert native.phones(*_phone_call(status=status)) == 0
    assert status[0] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"need": _misaligned(2)}, "need buffer must start on a 2-byte boundary"),
        ({"mode": 2}, "mode must be 0 or 1"),
        ({"mode": -1}, "mode must be 0 or 1"),
        ({"codes": (0, 1, 2, 255)}, "status codes 0..253"),
        ({"codes": (254, 1, 2, 3)}, "status codes 0..253"),
        ({"codes": (0, -1, 2, 3)}, "status codes 0..253"),
        ({"defaults": _us_defaults(home=-2)}, "record is out of range"),
        ({"defaults": _us_defaults(home=1 << 24)}, "record is out of range"),
        ({"defaults": _us_defaults(dcc_len=0)}, "record is out of range"),
        ({"defaults": _us_defaults(dcc_len=4)}, "record is out of range"),
        ({"defaults": _us_defaults(idd_len=9)}, "record is out of range"),
        ({"defaults": _us_defaults(national_ok=2)}, "record is out of range"),
        ({"defaults": np.zeros(23, np.uint8)}, "1..4096 records of 24 bytes"),
        ({"defaults": np.zeros(0, np.uint8)}, "1..4096 records of 24 bytes"),
        ({"rows": np.ones(1, np.uint16)}, "default region id is out of range"),
        ({"rows": np.zeros(2, np.uint16)}, "empty or n uint16 values"),
        ({"rows": _misaligned(2)}, "row defaults buffer must start on a 2-byte boundary"),
    ],
)
def test_phones_refuses_bad_arguments(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        native.phones(*_phone_call(**change))


@pytest.mark.parametrize(
    ("index", "name"),
    [(0, "transitions"), (2, "regions"), (4, "cc_first"), (5, "cc_count"), (6, "cc_list")],
)
def test_phones_refuses_misaligned_int32_tables(index: int, name: str) -> None:
    tables = list(phones_native._tables().snapshot.buffers)
    tables[index] = _misaligned_copy(np.ascontiguousarray(tables[index]))
    with pytest.raises(ValueError, match=f"{name} buffer must start on a 4-byte boundary"):
        native.phones(*_phone_call(tables=tuple(tables)))


def test_the_typed_interface_mirrors_the_stub_and_the_module() -> None:
    """extension.Native lists every function of _native.pyi with the same parameters, and the
    built module has each of them (mypy checks the types; this checks the names and order)."""
    import ast
    import inspect

    from spotify_audience_sync.identifiers import extension

    stub = Path(extension.__file__).resolve().parents[1] / "_native.pyi"
    functions = {
        node.name: [a.arg for a in node.args.posonlyargs + node.args.args]
        for node in ast.parse(stub.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    protocol = {
        name: list(inspect.signature(member).parameters)[1:]  # without self
        for name, member in vars(extension.Native).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert protocol == functions
    assert all(callable(getattr(native, name)) for name in functions)
    assert list(extension.PhoneArgs._fields) == functions["phones"]


def test_prepare_takes_the_cache_folder_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPOTIFY_AUDIENCE_SYNC_CACHE_DIR reaches the phone tables through settings and the
    pipeline (settings is the one reader of the environment)."""
    from spotify_audience_sync.segment.pipeline import prepare_segment
    from spotify_audience_sync.segment.sources import open_source
    from spotify_audience_sync.settings import CACHE_DIR_ENV

    monkeypatch.setattr(phones_native, "_cache_root", None)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "tables"))
    path = tmp_path / "in.csv"
    path.write_text("phone\n+44 20 7946 0018\n", encoding="utf-8")
    with open_source(str(path)) as source, prepare_segment(source):
        pass
    assert phones_native._cache_dir() is not None
    assert str(phones_native._cache_dir()).startswith(str(tmp_path / "tables"))
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    with open_source(str(path)) as source, prepare_segment(source):
        pass
    assert phones_native._cache_dir() is None


@pytest.mark.parametrize("disabled", [False, True], ids=["default", "escape-hatch"])
def test_the_escape_hatch_is_read_by_settings_and_applied_by_the_pipeline(disabled: bool) -> None:
    """SPOTIFY_AUDIENCE_SYNC_NO_NATIVE switches the C off for a run; identifiers read no
    environment themselves (settings.py does)."""
    env = {k: v for k, v in os.environ.items() if k != NO_NATIVE_ENV}
    if disabled:
        env[NO_NATIVE_ENV] = "1"
    code = (
        "from spotify_audience_sync.identifiers import hashing; a = hashing.native(); "
        "import spotify_audience_sync.segment.pipeline; print(a, hashing.native())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", str(not disabled)]
