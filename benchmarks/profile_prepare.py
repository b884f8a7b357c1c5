"""Where prepare's seconds go: each step of the hot path timed on one thread, on this machine.

    uv run python benchmarks/profile_prepare.py                       # the bench's mixed file
    uv run python benchmarks/profile_prepare.py path/to/export.csv

A sampling profiler (py-spy) slows the work it watches and folds the C kernels into whichever
Python line called them, so this script instead runs the pipeline's steps itself, one batch at
a time on one thread, timing each: reading, polars parsing, the field-count scan, the email and
phone kernels (with SHA-256), partitioning, staging; then, per partition, deduplicating,
encoding and writing. The steps are the same functions ``prepare`` calls on its worker
threads; ``prepare`` itself overlaps them on every core, so its wall time is less than the sum.
The table is what the README's performance section quotes, before and after a change.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prepare import make_segment  # noqa: E402
from spotify_audience_sync.identifiers import normalize  # noqa: E402
from spotify_audience_sync.segment import encode, locate, staging  # noqa: E402
from spotify_audience_sync.segment.columnsets import column_lists, hash_columns  # noqa: E402
from spotify_audience_sync.segment.pipeline import PrepareOptions, resolve_column_lists  # noqa: E402
from spotify_audience_sync.segment.process import _payloads, _statuses  # noqa: E402
from spotify_audience_sync.segment.sources import open_source  # noqa: E402
from spotify_audience_sync.segment.staging import Stage  # noqa: E402

T = TypeVar("T")
SPENT: collections.Counter[str] = collections.Counter()


def timed(step: str, work: Callable[..., T], *args: Any) -> T:
    started = time.perf_counter()
    result = work(*args)
    SPENT[step] += time.perf_counter() - started
    return result


def wrap(module: Any, name: str, step: str) -> None:
    """Time a function where the hot path calls it (a kernel inside ``hash_columns``)."""
    original = getattr(module, name)
    setattr(module, name, lambda *args: timed(step, original, *args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="a CSV (default: the bench's mixed file)")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the bench's file")
    parser.add_argument("--country-column", help="read each row's region from this column")
    args = parser.parse_args()
    path = args.input or str(make_segment(args.rows, phone=True))
    wrap(normalize, "_native_emails", "  of which emails kernel (rules + SHA-256)")
    wrap(normalize, "_native_phones", "  of which phones kernel (rules + SHA-256)")
    wrap(normalize, "_country", "  of which each row's country (--country-column)")
    wrap(normalize, "_row_country", "  of which counting phones read by their row's country")
    options = PrepareOptions(country_column=args.country_column)
    rows = 0
    started = time.perf_counter()
    with open_source(path) as source, tempfile.TemporaryDirectory() as temp:
        columns = resolve_column_lists(source.name, source.columns, options.columns)
        lists = column_lists(columns)
        wanted = [name for names in lists.values() for name in names]
        wanted += [args.country_column] if args.country_column else []
        stage = Stage(encode.record_width(options.layout, list(lists)), temp)
        batches = source.deferred_batches(wanted)
        while (batch := timed("read chunk + count newlines", next, batches, None)) is not None:
            chunk = batch._chunk  # the profile times the steps one by one
            assert chunk is not None
            frame = timed("polars: parse chunk", source.parse_chunk, chunk, wanted)
            timed(
                "field counts (ragged rows)",
                locate.ragged_rows,
                chunk,
                source.delimiter,
                len(source.columns),
            )
            rows += frame.height
            hashed = timed("hash_columns (rules + SHA-256)", hash_columns, frame, lists,
                           options.normalize)  # fmt: skip
            timed("status counts", _statuses, hashed, lists)
            for group, payload in timed("partition records", _payloads, hashed, options.layout,
                                        list(lists)):  # fmt: skip
                timed("stage write", stage.write, group, payload)
        read = time.perf_counter() - started

        def distinct(parts: dict[int, encode.Records]) -> bytes:
            return b"".join(
                timed(
                    "encode CSV lines",
                    encode.encode_records,
                    records,
                    options.layout,
                    list(lists),
                    group,
                )
                for group, records in parts.items()
            )

        wrap(staging, "deduplicate", "deduplicate partition")
        with open(Path(temp) / "out.csv", "wb") as out:
            for data in stage.deduplicated(distinct, workers=1):
                timed("write output", out.write, data)
        stage.close()
    total = time.perf_counter() - started
    print(f"{path}: {rows:,} rows; one thread: read phase {read:.2f} s, "
          f"write phase {total - read:.2f} s, total {total:.2f} s")  # fmt: skip
    for step, seconds in sorted(SPENT.items(), key=lambda item: -item[1]):
        print(f"{seconds:7.3f} s {seconds / total:6.1%}  {step}")


if __name__ == "__main__":
    main()
