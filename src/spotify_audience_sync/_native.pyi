"""Types of the C extension (sources in ``_native/``); optional: absent when built without a
compiler."""

from collections.abc import Sequence

from typing_extensions import Buffer

def sha256_hex(
    views: Buffer, validity: Buffer | None, data: Sequence[Buffer], offset: int, n: int, out: Buffer
) -> None:
    """SHA-256 hex of ``n`` Arrow string views into ``out`` (``n * 64`` bytes)."""

def emails(
    views: Buffer,
    validity: Buffer | None,
    data: Sequence[Buffer],
    offset: int,
    n: int,
    gmail_canonical: bool,
    status: Buffer,
    out: Buffer,
) -> int:
    """The email rules and SHA-256 for ASCII values; returns how many were left to polars."""

def accelerated() -> bool:
    """True when the CPU's SHA instructions are in use."""

def use_portable(portable: bool) -> None:
    """Force the portable SHA-256 (True), or go back to the fastest the CPU has (False)."""

def phones(
    views: Buffer,
    validity: Buffer | None,
    data: Sequence[Buffer],
    offset: int,
    n: int,
    tables: Sequence[Buffer],
    defaults: Buffer,
    row_defaults: Buffer,
    hashed: int,
    empty: int,
    invalid: int,
    not_a_number: int,
    mode: int,
    codes: Buffer,
    out: Buffer,
    need: Buffer,
) -> int:
    """libphonenumber's rules for plain phone numbers, a default region per row (an index into
    ``defaults``; none: all 0); returns how many were left to polars."""

def partition_order(matrix: Buffer, accepted: Buffer, n: int, order: Buffer, counts: Buffer) -> int:
    """Accepted rows of a hex-digest matrix grouped by partition, in row order; returns how many."""

def hex_keys(records: Buffer, n: int, width: int, col: int, out: Buffer) -> None:
    """The 16 hex digits at column ``col`` of each fixed-width record, as u64 sort keys."""
