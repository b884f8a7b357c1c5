"""Types of the C extension (sources in ``_native/``); optional: absent when built without a
compiler."""

from collections.abc import Sequence
from typing import Any, TypeAlias

from numpy.typing import NDArray
from typing_extensions import Buffer

#: What a kernel reads or writes: any buffer (numpy's arrays declare the protocol only from
#: Python 3.12 on, so they are named too).
Buf: TypeAlias = Buffer | NDArray[Any]

def sha256_hex(
    views: Buf, validity: Buf | None, data: Sequence[Buf], offset: int, n: int, out: Buf
) -> None:
    """SHA-256 hex of ``n`` Arrow string views into ``out`` (``n * 64`` bytes)."""

def emails(
    views: Buf,
    validity: Buf | None,
    data: Sequence[Buf],
    offset: int,
    n: int,
    gmail_canonical: bool,
    status: Buf,
    out: Buf,
) -> int:
    """The email rules and SHA-256 for ASCII values; returns how many were left to polars."""

def accelerated() -> bool:
    """True when the CPU's SHA instructions are in use."""

def use_portable(portable: bool) -> None:
    """Force the portable SHA-256 and field-count scan (True), or go back to the fastest the
    CPU has (False)."""

def phones(
    views: Buf,
    validity: Buf | None,
    data: Sequence[Buf],
    offset: int,
    n: int,
    tables: Sequence[Buf],
    defaults: Buf,
    row_defaults: Buf,
    hashed: int,
    empty: int,
    invalid: int,
    not_a_number: int,
    mode: int,
    codes: Buf,
    out: Buf,
    need: Buf,
) -> int:
    """libphonenumber's rules for plain phone numbers, a default region per row (an index into
    ``defaults``; none: all 0); returns how many were left to polars."""

def partition_order(matrix: Buf, accepted: Buf, n: int, order: Buf, counts: Buf) -> int:
    """Accepted rows of a hex-digest matrix grouped by partition, in row order; returns how many."""

def hex_keys(records: Buf, n: int, width: int, col: int, out: Buf) -> None:
    """The 16 hex digits at column ``col`` of each fixed-width record, as u64 sort keys."""

def unique_sorted(records: Buf, n: int, width: int, packed: Buf, bits: int, out: Buf) -> int:
    """The records in the order of ``packed`` (sorted key|index words, the index in the low
    ``bits``), each equal to the one kept before it dropped, copied into ``out``; returns how
    many were kept, or -1 when two different records share a key."""

def ragged_scan(chunk: Buf, delimiter: int, width: int) -> tuple[int, int, int, int, int]:
    """``(records, short, first_long_index, first_long_fields, first_long_start)`` of a CSV
    chunk against a header of ``width`` fields (the last three -1 when no record is longer)."""
