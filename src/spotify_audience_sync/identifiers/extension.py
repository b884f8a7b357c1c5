"""The C extension's interface as a type, so mypy checks every call into C.

A module object is ``ModuleType`` to mypy: every attribute ``Any``, so a call with the wrong
arguments type-checks and fails at run time (or, for buffers, worse). :class:`Native` mirrors
``_native.pyi`` method for method; :func:`load` returns the built module *as* a ``Native``,
and mypy checks that the stub satisfies the Protocol, so the two cannot drift apart silently
(``tests/identifiers/test_native.py`` also compares their parameter names).

``phones`` takes sixteen positional arguments; :class:`PhoneArgs` names and types them, and
:func:`call_phones` is the one place they are spread into the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from typing import TypeAlias

    from numpy.typing import NDArray
    from typing_extensions import Buffer

    #: Any buffer; numpy's arrays declare the buffer protocol only from Python 3.12 on.
    Buf: TypeAlias = Buffer | NDArray[Any]

__all__ = ["Native", "PhoneArgs", "call_phones", "load"]


class Native(Protocol):
    """``spotify_audience_sync._native``, as ``_native.pyi`` describes it."""

    def sha256_hex(
        self,
        views: Buf,
        validity: Buf | None,
        data: Sequence[Buf],
        offset: int,
        n: int,
        out: Buf,
        /,
    ) -> None: ...

    def emails(
        self,
        views: Buf,
        validity: Buf | None,
        data: Sequence[Buf],
        offset: int,
        n: int,
        gmail_canonical: bool,
        status: Buf,
        out: Buf,
        /,
    ) -> int: ...

    def accelerated(self) -> bool: ...

    def use_portable(self, portable: bool, /) -> None: ...

    def phones(
        self,
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
        /,
    ) -> int: ...

    def partition_order(
        self, matrix: Buf, accepted: Buf, n: int, order: Buf, counts: Buf, /
    ) -> int: ...

    def hex_keys(self, records: Buf, n: int, width: int, col: int, out: Buf, /) -> None: ...

    def unique_sorted(
        self, records: Buf, n: int, width: int, packed: Buf, bits: int, out: Buf, /
    ) -> int: ...

    def ragged_scan(
        self, chunk: Buf, delimiter: int, width: int, /
    ) -> tuple[int, int, int, int, int]: ...


class PhoneArgs(NamedTuple):
    """The ``phones`` kernel's arguments, in order (see ``_native/phone.c``).

    ``defaults`` holds one 24-byte record per default region (see ``native.py``);
    ``row_defaults`` a uint16 record index per row, or nothing when every row uses record 0.
    ``mode`` 0 writes SHA-256 digests to ``out``, 1 E.164 text (a length byte, the digits).
    """

    views: Buf
    validity: Buf | None
    data: Sequence[Buf]
    offset: int
    n: int
    tables: Sequence[Buf]
    defaults: Buf
    row_defaults: Buf
    hashed: int
    empty: int
    invalid: int
    not_a_number: int
    mode: int
    codes: Buf
    out: Buf
    need: Buf


def call_phones(native: Native, args: PhoneArgs) -> int:
    """Run the phones kernel; returns how many rows it left to the polars path."""
    return native.phones(*args)


def load() -> Native | None:
    """The built extension, or None when the package was installed without a C compiler."""
    try:
        from spotify_audience_sync import _native
    except ImportError:
        return None
    module: Native = _native
    return module
