"""In-process sources: a data frame a Python caller already holds, read in bounded batches.

A polars DataFrame or LazyFrame, a pandas DataFrame, a pyarrow Table or RecordBatchReader, or
any object that speaks the Arrow C stream interface (``__arrow_c_stream__``): each becomes a
source with the interface of :class:`~.sources.Source`, so the pipeline, the split and the
guards are those of a file. A LazyFrame runs on polars' streaming engine and is never
collected whole; an Arrow stream is read batch by batch, once. Every column is read as text,
as a file's are (a phone's leading ``+`` or zero must reach the identifier rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import polars as pl

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.segment.batches import DeferredBatch, ready_batches
from spotify_audience_sync.segment.sources import Source, looks_like_data

__all__ = ["DEFAULT_FRAME_ROWS", "FrameSource", "is_frame", "open_frame"]

#: Rows per batch: the size a file's chunk of a few MB holds, so memory stays as bounded.
DEFAULT_FRAME_ROWS = 100_000

Frames = Callable[[list[str]], Iterator[pl.DataFrame]]


class FrameSource:
    """A frame's columns, read ``batch_rows`` at a time as text (``format`` is ``"frame"``)."""

    def __init__(self, name: str, columns: list[str], frames: Frames) -> None:
        self.name = name
        self.format = "frame"
        self.columns = columns
        self._frames = frames

    def batches(self, columns: list[str]) -> Iterator[pl.DataFrame]:
        """The named columns as text, a bounded batch at a time."""
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            shown = ", ".join(
                "(named like data)" if looks_like_data(c) else repr(c) for c in unknown
            )
            raise InputError(f"{self.name}: no column {shown}")
        return (_as_text(frame, columns, self.name) for frame in self._frames(columns))

    def deferred_batches(self, columns: list[str]) -> Iterator[DeferredBatch]:
        """:meth:`batches` in the pipeline's shape; ``line_of`` gives the 1-based row."""
        return ready_batches(self.batches(columns))

    def close(self) -> None:
        """Nothing to release: the caller owns the frame."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _as_text(frame: pl.DataFrame, columns: list[str], name: str) -> pl.DataFrame:
    try:
        return frame.select(pl.col(columns).cast(pl.String))
    except pl.exceptions.PolarsError:
        raise InputError(f"{name}: a column cannot be read as text") from None


def is_frame(obj: object) -> bool:
    """Whether ``obj`` is something :func:`open_frame` reads (not a path)."""
    return (
        isinstance(obj, pl.DataFrame | pl.LazyFrame)
        or hasattr(obj, "__arrow_c_stream__")
        or (_is_pandas(obj) or _is_arrow(obj))
    )


def _is_pandas(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def _is_arrow(obj: object) -> bool:
    return type(obj).__module__.startswith("pyarrow") and type(obj).__name__ in (
        "Table",
        "RecordBatchReader",
    )


def open_frame(obj: Any, *, batch_rows: int = DEFAULT_FRAME_ROWS) -> Source:
    """``obj`` as a source of the pipeline; TypeError for anything else."""
    name = f"<{type(obj).__name__}>"
    if isinstance(obj, pl.LazyFrame):
        source = _lazy(obj, name, batch_rows)
    elif isinstance(obj, pl.DataFrame):
        frame = obj
        source = FrameSource(name, frame.columns, lambda c: frame.select(c).iter_slices(batch_rows))
    else:
        source = _arrow(obj, name, batch_rows)
    # prepare_segment reads only name, format, columns and deferred_batches(): a FrameSource is
    # a Source in every way the pipeline looks at (as a QuerySource is).
    return cast("Source", source)


def _lazy(frame: pl.LazyFrame, name: str, batch_rows: int) -> FrameSource:
    columns = frame.collect_schema().names()

    def frames(wanted: list[str]) -> Iterator[pl.DataFrame]:
        query = frame.select(wanted)
        yield from query.collect_batches(chunk_size=batch_rows, engine="streaming")

    return FrameSource(name, columns, frames)


def _arrow(obj: Any, name: str, batch_rows: int) -> FrameSource:
    """pandas, pyarrow, or the Arrow C stream interface: read as Arrow record batches."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if _is_pandas(obj):
        obj = pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, pa.Table):
        table = obj
        return FrameSource(
            name,
            [str(c) for c in table.column_names],
            lambda wanted: _from_batches(iter(table.select(wanted).to_batches(batch_rows))),
        )
    if not isinstance(obj, pa.RecordBatchReader):
        if not hasattr(obj, "__arrow_c_stream__"):
            raise TypeError(
                f"cannot read a {type(obj).__name__}: give a path, a polars DataFrame or "
                "LazyFrame, a pandas DataFrame, a pyarrow Table or RecordBatchReader, or an "
                "object with __arrow_c_stream__"
            )
        obj = pa.RecordBatchReader.from_stream(obj)
    reader: pa.RecordBatchReader = obj
    read: list[bool] = []

    def frames(wanted: list[str]) -> Iterator[pl.DataFrame]:
        if read:
            raise InputError(f"{name}: a stream can be read once")
        read.append(True)
        for batch in reader:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield from frame.select(wanted).iter_slices(batch_rows)

    return FrameSource(name, [str(c) for c in reader.schema.names], frames)


def _from_batches(batches: Iterator[Any]) -> Iterator[pl.DataFrame]:
    for batch in batches:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame
