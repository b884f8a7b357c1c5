"""The rejects report (``--rejects PATH``): where each rejected value is, and why. Never the value.

One CSV line per rejected value: its location (the 1-based line of a CSV/TSV/NDJSON file,
counting the header line; the 1-based row of a Parquet file or a query's result), the column
(by name, or by position when the name looks like data) and the reason. Blank cells are
counted in the report but not listed: in a file with an email or a phone per person, listing
them would list half the file. The file is created 0600 and put in place only when the run
succeeds (:class:`~.outputs.AtomicFile`), in input order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spotify_audience_sync.segment.outputs import AtomicFile

__all__ = ["BatchRejects", "RejectsFile"]


@dataclass(frozen=True)
class BatchRejects:
    """One batch's rejected values: locations and, row-aligned, each one's column and reason."""

    locations: npt.NDArray[np.int64]
    """Exact 1-based lines, or 0-based rows within the batch when ``relative``."""
    columns: list[str]
    reasons: list[str]
    relative: bool


class RejectsFile:
    """Writes ``line,column,reason`` (or ``row,...``) lines as batches are merged in order."""

    def __init__(self, path: str, unit: str) -> None:
        self._file = AtomicFile(path, "--rejects", mode=0o600)
        self._file.write(f"{unit},column,reason\n".encode())
        self.count = 0

    def add(self, batch: BatchRejects, first_row: int) -> None:
        """Append one batch; ``first_row`` is the 1-based row of its first record."""
        if not len(batch.locations):
            return
        where = batch.locations + first_row if batch.relative else batch.locations
        order = np.argsort(where, kind="stable")
        lines = (
            f"{where[i]},{_field(batch.columns[i])},{batch.reasons[i]}\n" for i in order.tolist()
        )
        self._file.write("".join(lines).encode())
        self.count += len(order)

    def commit(self) -> None:
        """Put the finished report in place."""
        self._file.commit()

    def discard(self) -> None:
        """Drop a report of a run that failed."""
        self._file.discard()


def _field(text: str) -> str:
    """A CSV field: quoted when it holds a comma, a quote or a line end."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
