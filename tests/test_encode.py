"""Records, exact deduplication and the two file layouts."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spotify_audience_sync.encode import (
    deduplicate,
    encode_records,
    header,
    record_width,
    to_records,
    written_per_type,
)
from spotify_audience_sync.identifiers import (
    IdentifierType,
    NormalizeOptions,
    digests,
    normalize_batch,
)
from spotify_audience_sync.staging import partition_payload

EMAIL, PHONE, DEVICE = IdentifierType.EMAIL, IdentifierType.PHONE, IdentifierType.DEVICE_ID


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record(lead: int, *hexes: str) -> np.ndarray:
    return np.frombuffer(bytes([lead]) + "".join(hexes).encode(), dtype=np.uint8)


def frame(**columns: list[str | None]) -> pl.DataFrame:
    """A normalized batch whose values are digests already (status prehashed, or empty)."""
    data: dict[str, list[str | None]] = {}
    for key, values in columns.items():
        data[f"{key}_value"] = values
        data[f"{key}_status"] = ["empty" if v is None else "prehashed" for v in values]
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


def test_type_value_records_carry_type_and_digest_and_partition_by_first_byte() -> None:
    a, b = sha("a@example.com"), sha("+12015550123")
    records, partitions = to_records(
        frame(email=[a, None], phone=[b, b]), "type-value", [EMAIL, PHONE]
    )
    assert records.shape == (3, record_width("type-value", [EMAIL, PHONE]))
    assert [bytes(r).decode("latin-1")[1:] for r in records] == [a, b, b]
    assert list(records[:, 0]) == [0, 1, 1]
    assert list(partitions) == [int(a[:2], 16), int(b[:2], 16), int(b[:2], 16)]


def test_hashed_values_are_hashed_and_prehashed_ones_are_not() -> None:
    batch = pl.DataFrame(
        {
            "email_value": ["a@example.com", sha("x"), "junk"],
            "email_status": ["hashed", "prehashed", "malformed"],
        }
    )
    records, _ = to_records(batch, "type-value", [EMAIL])
    assert [bytes(r[1:]).decode() for r in records] == [sha("a@example.com"), sha("x")]


def test_deduplicate_removes_exact_copies_and_orders_canonically() -> None:
    digests = [sha(str(i)) for i in range(100)]
    records = np.stack([record(0, d) for d in digests + digests[:30]])
    shuffled = records[np.random.default_rng(1).permutation(len(records))]
    out = deduplicate(shuffled)
    assert len(out) == 100
    assert np.array_equal(out, deduplicate(records))


def test_deduplicate_keeps_different_records_that_share_a_sort_key() -> None:
    same_prefix = "ab" * 8  # the 16 hex digits the sort key is made of
    one, two = same_prefix + "0" * 48, same_prefix + "1" * 48
    records = np.stack([record(0, one), record(0, two), record(0, one), record(1, one)])
    out = deduplicate(records)
    assert sorted(bytes(r) for r in out) == sorted({bytes(r) for r in records})


def test_wide_rows_with_one_email_and_several_phones_stay_apart() -> None:
    e, p1, p2 = sha("e"), sha("p1"), sha("p2")
    records, _ = to_records(frame(email=[e, e, e], phone=[p1, p2, p1]), "wide", [EMAIL, PHONE])
    out = deduplicate(records)
    text = encode_records(out, "wide", [EMAIL, PHONE]).decode()
    assert sorted(text.splitlines()) == sorted([f"{e},{p1}", f"{e},{p2}"])


def test_wide_empty_cells_and_headers() -> None:
    e, d = sha("e"), sha("d")
    kinds = [EMAIL, PHONE, DEVICE]
    records, _ = to_records(
        frame(email=[e, None, None], phone=[None, None, None], device_id=[None, d, None]),
        "wide",
        kinds,
    )
    assert len(records) == 2  # the row with nothing is dropped
    text = encode_records(deduplicate(records), "wide", kinds).decode()
    assert sorted(text.splitlines()) == sorted([f"{e},,", f",,{d}"])
    assert header("wide", kinds) == b"EMAIL_ID_SHA256,PHONE_NUMBER_SHA256,DEVICE_ID_SHA256\n"
    assert written_per_type(records, "wide", kinds) == {EMAIL: 1, PHONE: 0, DEVICE: 1}


def test_type_value_encoding() -> None:
    a, b = sha("a"), sha("b")
    records = np.stack([record(1, b), record(0, a)])
    assert encode_records(records, "type-value", [EMAIL, PHONE]) == (
        f"EMAIL_ID_SHA256,{a}\nPHONE_NUMBER_SHA256,{b}\n".encode()
    )
    assert header("type-value", [EMAIL]) == b"type,value\n"


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_partition_payload_keeps_every_record_in_its_partition(size: int) -> None:
    digests = [sha(str(i)) for i in range(size)]
    records, partitions = to_records(frame(email=digests), "type-value", [EMAIL])
    payload = partition_payload(records, partitions)
    assert sum(len(v) for v in payload.values()) == records.nbytes
    for key, data in payload.items():
        rows = np.frombuffer(data, np.uint8).reshape(-1, records.shape[1])
        assert all(int(bytes(r[1:3]).decode(), 16) >> 2 == key for r in rows)


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=30))
def test_the_file_path_hashes_exactly_like_the_rules_and_never_writes_a_raw_value(
    values: list[str | None],
) -> None:
    """The upload file is built by `to_records` (hash all, then fix pre-hashed rows): it must
    agree with `digests()` row for row and contain nothing but type names and 64-hex values."""
    batch = pl.DataFrame({"v": values}, schema={"v": pl.String})
    normalized = normalize_batch(batch, {EMAIL: "v"}, NormalizeOptions(gmail_canonical=True))
    records, _ = to_records(normalized, "type-value", [EMAIL])
    text = encode_records(records, "type-value", [EMAIL]).decode()
    expected_rows = [d for d in digests(normalized, EMAIL).to_list() if d is not None]
    assert [line.split(",")[1] for line in text.splitlines()] == expected_rows
    assert all(re.fullmatch(r"EMAIL_ID_SHA256,[0-9a-f]{64}", line) for line in text.splitlines())
