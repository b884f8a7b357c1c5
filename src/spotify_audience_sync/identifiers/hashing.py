"""SHA-256 hex digests of polars string columns, as ``(n, 64)`` matrices of their ASCII bytes.

The encoder works on fixed-width records, so digests travel as byte matrices, never as
per-row Python or polars strings. Two engines give the same bytes: the C extension
(``_native/``: the CPU's SHA instructions, values read straight out of Arrow's string views,
no GIL held) and, where it was not built (no C compiler at install time), polars-hash. Pure:
no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl
import polars_hash  # noqa: F401  (registers the .chash namespace)

from spotify_audience_sync.identifiers.extension import Native, load

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DIGEST",
    "EMAIL_DEFER",
    "Exported",
    "Matrix",
    "email_kernel",
    "hex_matrix",
    "native",
    "native_module",
    "sha256_hex",
    "sha256_matrix",
    "use_native",
    "views",
]

Matrix = npt.NDArray[np.uint8]
DIGEST = 64  # hex characters per SHA-256
#: The email kernel's status for a value it leaves to the polars rules (a character past
#: U+017F, anything a repair of ``identifiers/emails.py`` may touch, more than 320 bytes).
EMAIL_DEFER = 255


def _load() -> Native | None:
    return load()  # None when built without a C compiler: polars does the work


_NATIVE = _load()
_enabled = _NATIVE is not None


def native() -> bool:
    """Whether the C extension does the hashing (and the email rules) in this process."""
    return _enabled


def use_native(enabled: bool) -> None:
    """Switch between the two engines; a no-op if not built. Tests and benchmarks call it, and
    the pipeline does where ``settings.native_disabled()`` says (this pure layer reads no
    environment)."""
    global _enabled
    _enabled = enabled and _NATIVE is not None


def sha256_hex(value: pl.Expr) -> pl.Expr:
    """Vectorized SHA-256 hex of the UTF-8 bytes as a polars expression (polars-hash)."""
    digest: pl.Expr = value.chash.sha2_256()  # type: ignore[attr-defined]
    return digest


@dataclass(frozen=True)
class Exported:
    """A string column's Arrow buffers: 16-byte views, the validity bitmap (None: no nulls),
    the data buffers long values live in, and the array's offset."""

    views: Buffer
    validity: Buffer | None
    data: list[Buffer]
    offset: int

    def args(self) -> tuple[Buffer, Buffer | None, list[Buffer], int]:
        """The leading arguments of every kernel in ``_native``."""
        return self.views, self.validity, self.data, self.offset


def native_module() -> Native | None:
    """The C extension when it is built and switched on, else None."""
    return _NATIVE if _enabled else None


def arrow_view(column: pl.Series) -> tuple[str, Any]:
    """``(format, array view)`` of ``column`` as polars exports it through the Arrow C stream
    interface, read with nanoarrow (3 MB; pyarrow, 165 MB, is not a dependency). Buffers are
    ``[validity, ...layout..., (variadic sizes)]``, each a buffer-protocol object that keeps
    the exported array alive."""
    import nanoarrow as na  # type: ignore[import-untyped,unused-ignore]

    array = na.c_array_stream(column.rechunk()).get_next()  # one chunk: one array
    return str(array.schema.format), array.view()


def _buffer(buffer: Any) -> Buffer:
    """An empty Arrow buffer as ``b""`` (nanoarrow gives a zero-length view, pyarrow None)."""
    return buffer if memoryview(buffer).nbytes else b""


def views(column: pl.Series) -> Exported | None:
    """A String column as Arrow exports it (string views): what the C kernels read."""
    fmt, view = arrow_view(column.cast(pl.String))
    if fmt != "vu":  # string_view
        return None
    buffers = list(view.buffers)
    validity = buffers[0] if view.null_count else None
    # After validity and views: the data buffers, then one of their sizes (not a data buffer).
    data = [_buffer(b) for b in buffers[2:-1]]
    return Exported(buffers[1], validity, data, int(view.offset))


def sha256_matrix(values: pl.Series) -> Matrix:
    """SHA-256 hex of every value (no nulls), row for row."""
    n = values.len()
    if n == 0:
        return np.empty((0, DIGEST), dtype=np.uint8)
    if values.null_count():
        raise ValueError("values to hash must not be null")
    exported = views(values) if _enabled else None
    if exported is None or _NATIVE is None:
        return hex_matrix(values.to_frame("v").select(sha256_hex(pl.col("v"))).to_series())
    out = np.empty((n, DIGEST), dtype=np.uint8)
    _NATIVE.sha256_hex(*exported.args(), n, out)
    return out


def email_kernel(values: pl.Series, gmail_canonical: bool) -> tuple[Matrix, Matrix, int] | None:
    """The email rules and SHA-256 in one pass, for ASCII values: ``(codes, matrix, deferred)``.

    ``codes`` are :data:`.normalize.STATUS` codes (hashed, prehashed, empty, malformed) or
    :data:`EMAIL_DEFER` where the polars rules must decide; ``matrix`` holds the digest of each
    hashed or pre-hashed row (other rows are undefined). None when the extension is off.
    """
    if not _enabled or _NATIVE is None:
        return None
    exported = views(values)
    if exported is None:
        return None
    n = values.len()
    codes = np.empty(n, dtype=np.uint8)
    out = np.empty((n, DIGEST), dtype=np.uint8)
    deferred = int(_NATIVE.emails(*exported.args(), n, gmail_canonical, codes, out))
    return codes, out, deferred


def hex_matrix(column: pl.Series) -> Matrix:
    """64-character hex digests (no nulls) → an ``(n, 64)`` matrix of their ASCII bytes.

    Polars exports strings zero-copy as Arrow string views; a freshly hashed column's views
    point at its data buffers in order, so those buffers, concatenated, are the matrix. That
    layout is checked, not assumed; otherwise (a filtered column, say) each row's 64 bytes are
    gathered from where its view points (one copy). Both are many times cheaper than
    reinterpreting to a polars fixed-size array.
    """
    n = column.len()
    if n == 0:
        return np.empty((0, DIGEST), dtype=np.uint8)
    if column.null_count():
        raise ValueError("digests must not be null")
    matrix = from_views(column, n)
    if matrix is not None:
        return matrix
    # Any other layout: gather each value's 64 bytes from where its view points.
    fmt, view = arrow_view(column.cast(pl.String))
    buffers = list(view.buffers)
    offset = int(view.offset)
    words = np.frombuffer(buffers[1], dtype=np.uint32)[4 * offset : 4 * (offset + n)]
    words = words.reshape(n, 4)
    if fmt != "vu" or not (words[:, 0] == DIGEST).all():
        raise ValueError("digests must be 64 characters long")
    index, start = words[:, 2], words[:, 3].astype(np.int64)
    out = np.empty((n, DIGEST), dtype=np.uint8)
    rows_of = out.view(f"V{DIGEST}").reshape(n)  # one 64-byte item per row: memcpy-like copies
    for number, buffer in enumerate(buffers[2:-1]):
        data = np.frombuffer(buffer, dtype=np.uint8)
        rows = np.flatnonzero(index == number)
        if not len(rows):
            continue
        at = start[rows]
        if not (at % DIGEST).any():  # digests laid end to end (a filtered hashed column)
            records = data[: len(data) - len(data) % DIGEST].view(f"V{DIGEST}")
            rows_of[rows] = records[at // DIGEST]
        else:
            out[rows] = np.lib.stride_tricks.sliding_window_view(data, DIGEST)[at]
    return out


def from_views(column: pl.Series, n: int) -> Matrix | None:
    """The matrix straight from a string-view column's data buffers, or None if the views are
    not the plain in-order layout (each value 64 bytes, each buffer filled from its start)."""
    fmt, view = arrow_view(column)
    buffers = list(view.buffers)[:-1]  # without the variadic sizes: validity, views, data...
    if fmt != "vu" or view.null_count or len(buffers) < 3:
        return None
    offset = int(view.offset)
    words = np.frombuffer(buffers[1], dtype=np.uint32)
    words = words[4 * offset : 4 * (offset + n)].reshape(n, 4)
    length, index, start = words[:, 0], words[:, 2], words[:, 3]
    if not (length == DIGEST).all() or (np.diff(index.astype(np.int64)) < 0).any():
        return None
    counts = np.bincount(index, minlength=len(buffers) - 2)
    if len(counts) > len(buffers) - 2:
        return None
    first_row = np.cumsum(counts) - counts
    expected = (np.arange(n, dtype=np.int64) - first_row[index]) * DIGEST
    if not (start == expected).all():
        return None
    parts = [
        np.frombuffer(buffers[2 + i], dtype=np.uint8, count=int(count) * DIGEST)
        for i, count in enumerate(counts)
        if count
    ]
    matrix = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return matrix.reshape(n, DIGEST)
