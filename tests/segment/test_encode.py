"""Records, exact deduplication and the two file layouts."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.identifiers.hashing import from_views as _from_views
from spotify_audience_sync.identifiers.hashing import hex_matrix as _digests
from spotify_audience_sync.identifiers.normalize import (
    IdentifierType,
    NormalizeOptions,
    digests,
    hash_frame,
    normalize_batch,
    sha256_hex,
)
from spotify_audience_sync.segment.encode import (
    Block,
    Layout,
    deduplicate,
    encode_records,
    header,
    record_width,
    written_per_type,
)
from spotify_audience_sync.segment.encode import to_blocks as blocks_of_hashes
from spotify_audience_sync.segment.staging import partition_payload

EMAIL, PHONE, DEVICE = IdentifierType.EMAIL, IdentifierType.PHONE, IdentifierType.DEVICE_ID


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def digest_records(*hexes: str) -> np.ndarray:
    """type-value records: one 64-character digest each."""
    return np.frombuffer("".join(hexes).encode(), dtype=np.uint8).reshape(-1, 64)


def wide_record(lead: int, *hexes: str) -> np.ndarray:
    return np.frombuffer(bytes([lead]) + "".join(hexes).encode(), dtype=np.uint8)


def text_of(records: np.ndarray) -> list[str]:
    return [bytes(r).decode() for r in records]


def to_blocks(normalized: pl.DataFrame, layout: Layout, kinds: list[IdentifierType]) -> list[Block]:
    """Blocks of a normalized frame: hashed as the pipeline hashes it."""
    return blocks_of_hashes({k: hash_frame(normalized, k) for k in kinds}, layout, kinds)


def frame(**columns: list[str | None]) -> pl.DataFrame:
    """A normalized batch whose values are digests already (status prehashed, or empty)."""
    data: dict[str, list[str | None]] = {}
    for key, values in columns.items():
        data[f"{key}_value"] = values
        data[f"{key}_status"] = ["empty" if v is None else "prehashed" for v in values]
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


def test_type_value_blocks_group_by_type_and_partition_by_first_byte() -> None:
    a, b = sha("a@example.com"), sha("+12015550123")
    blocks = to_blocks(frame(email=[a, None], phone=[b, b]), "type-value", [EMAIL, PHONE])
    assert [block.group for block in blocks] == [0, 1]
    assert [text_of(block.records) for block in blocks] == [[a], [b, b]]
    assert all(block.records.shape[1] == record_width("type-value", [EMAIL]) for block in blocks)
    assert [list(block.partitions) for block in blocks] == [[int(a[:2], 16)], [int(b[:2], 16)] * 2]


def test_hashed_values_are_hashed_and_prehashed_ones_are_not() -> None:
    batch = pl.DataFrame(
        {
            "email_value": ["a@example.com", sha("x"), "junk"],
            "email_status": ["hashed", "prehashed", "malformed"],
        }
    )
    blocks = to_blocks(batch, "type-value", [EMAIL])
    assert [text for block in blocks for text in text_of(block.records)] == [
        sha("a@example.com"),
        sha("x"),
    ]


def test_a_type_with_nothing_accepted_makes_no_block() -> None:
    batch = pl.DataFrame({"email_value": ["junk", None], "email_status": ["malformed", "empty"]})
    assert to_blocks(batch, "type-value", [EMAIL]) == []
    assert to_blocks(batch, "wide", [EMAIL]) == []


def test_deduplicate_removes_exact_copies_and_orders_canonically() -> None:
    hexes = [sha(str(i)) for i in range(100)]
    records = digest_records(*hexes, *hexes[:30])
    shuffled = records[np.random.default_rng(1).permutation(len(records))]
    out = deduplicate(shuffled)
    assert sorted(text_of(out)) == sorted(hexes)
    assert np.array_equal(out, deduplicate(records))


@pytest.mark.parametrize("shared", [8, 16], ids=["top-key-bits", "whole-key"])
def test_deduplicate_keeps_different_records_that_share_key_bits(shared: int) -> None:
    """The sort key is the first 16 hex digits; the fast path compares only its top bits."""
    prefix = "ab" * (shared // 2)
    one, two = prefix + "0" * (64 - shared), prefix + "1" * (64 - shared)
    records = digest_records(one, two, one, two, one)
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 3, 2, 4]):
        out = deduplicate(records[order])
        assert sorted(text_of(out)) == sorted([one, two])
        assert np.array_equal(out, deduplicate(records))  # canonical, whatever the order


@pytest.mark.parametrize("copies", [0, 1, 100])
def test_deduplicate_orders_a_set_the_same_whatever_the_copies_and_partitions(copies: int) -> None:
    """Records from different partitions (top key bits differ), with or without duplicates:
    one order for one set, by the whole key."""
    low, high = "0000000000000001" + "1" * 48, "fc00000000000000" + "2" * 48
    records = digest_records(high, low, *[low] * copies)
    assert text_of(deduplicate(records)) == [low, high]
    assert text_of(deduplicate(records[::-1])) == [low, high]


def test_deduplicate_keeps_wide_records_that_differ_after_the_lead_digest() -> None:
    e, p1 = sha("e"), sha("p1")
    records = np.stack([wide_record(3, e, p1), wide_record(1, e, "0" * 64), wide_record(3, e, p1)])
    out = deduplicate(records)
    assert sorted(bytes(r) for r in out) == sorted({bytes(r) for r in records})


def test_wide_rows_with_one_email_and_several_phones_stay_apart() -> None:
    e, p1, p2 = sha("e"), sha("p1"), sha("p2")
    [block] = to_blocks(frame(email=[e, e, e], phone=[p1, p2, p1]), "wide", [EMAIL, PHONE])
    out = deduplicate(block.records)
    text = encode_records(out, "wide", [EMAIL, PHONE], block.group).decode()
    assert sorted(text.splitlines()) == sorted([f"{e},{p1}", f"{e},{p2}"])


def test_wide_empty_cells_and_headers() -> None:
    e, d = sha("e"), sha("d")
    kinds = [EMAIL, PHONE, DEVICE]
    [block] = to_blocks(
        frame(email=[e, None, None], phone=[None, None, None], device_id=[None, d, None]),
        "wide",
        kinds,
    )
    assert len(block.records) == 2  # the row with nothing is dropped
    assert block.records.shape[1] == record_width("wide", kinds) == 1 + 3 * 64
    text = encode_records(deduplicate(block.records), "wide", kinds, 0).decode()
    assert sorted(text.splitlines()) == sorted([f"{e},,", f",,{d}"])
    assert header("wide", kinds) == b"EMAIL_ID_SHA256,PHONE_NUMBER_SHA256,DEVICE_ID_SHA256\n"
    assert written_per_type(block.records, "wide", kinds, 0) == {EMAIL: 1, PHONE: 0, DEVICE: 1}


def test_type_value_encoding() -> None:
    a, b = sha("a"), sha("b")
    assert encode_records(digest_records(a, b), "type-value", [EMAIL, PHONE], 1) == (
        f"PHONE_NUMBER_SHA256,{a}\nPHONE_NUMBER_SHA256,{b}\n".encode()
    )
    assert written_per_type(digest_records(a, b), "type-value", [EMAIL, PHONE], 1) == {PHONE: 2}
    assert header("type-value", [EMAIL]) == b"type,value\n"


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_partition_payload_keeps_every_record_in_its_partition(size: int) -> None:
    hexes = [sha(str(i)) for i in range(size)]
    blocks = to_blocks(frame(email=hexes), "type-value", [EMAIL])
    block = blocks[0] if blocks else Block(0, digest_records(), np.empty(0, np.uint8))
    payload = partition_payload(block.records, block.partitions)
    assert sum(len(rows) for rows in payload.values()) == size
    assert sorted(t for rows in payload.values() for t in text_of(rows)) == sorted(hexes)
    for key, rows in payload.items():
        assert all(int(t[:2], 16) >> 2 == key for t in text_of(rows))


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=30))
def test_the_file_path_hashes_exactly_like_the_rules_and_never_writes_a_raw_value(
    values: list[str | None],
) -> None:
    """The upload file is built by `to_blocks` (accepted values hashed, pre-hashed ones kept):
    it must agree with `digests()` and contain nothing but type names and 64-hex values."""
    batch = pl.DataFrame({"v": values}, schema={"v": pl.String})
    normalized = normalize_batch(batch, {EMAIL: "v"}, NormalizeOptions(gmail_canonical=True))
    text = "".join(
        encode_records(block.records, "type-value", [EMAIL], block.group).decode()
        for block in to_blocks(normalized, "type-value", [EMAIL])
    )
    expected_rows = [d for d in digests(normalized, EMAIL).to_list() if d is not None]
    assert sorted(line.split(",")[1] for line in text.splitlines()) == sorted(expected_rows)
    assert all(re.fullmatch(r"EMAIL_ID_SHA256,[0-9a-f]{64}", line) for line in text.splitlines())


def test_digests_come_out_of_arrow_buffers_exactly_on_both_paths() -> None:
    """A freshly hashed column is read through its string views; a filtered or sliced one
    (views no longer in order) through large_binary. Both give the digests, byte for byte."""
    values = [f"user{i}@example.com" for i in range(20_000)]
    fresh = pl.select(sha256_hex(pl.lit(pl.Series(values)))).to_series()
    expected = [sha(v) for v in values]
    assert _from_views(fresh, fresh.len()) is not None
    assert text_of(_digests(fresh)) == expected
    every_third = fresh.filter(pl.Series([i % 3 == 0 for i in range(len(values))]))
    sliced = fresh.slice(1_000, 5_000)
    for column, rows in ((every_third, expected[::3]), (sliced, expected[1_000:6_000])):
        assert _from_views(column, column.len()) is None
        assert text_of(_digests(column)) == rows
    assert _digests(fresh.clear()).shape == (0, 64)
    with pytest.raises(ValueError, match="null"):
        _digests(pl.Series([expected[0], None]))
