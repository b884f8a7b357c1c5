"""Reading an uploaded customer-list file the way the emulator counts it.

Both layouts the contract allows: ``type,value`` rows, or "wide" with one column per type.
A row is well-formed when its type is known and its value is 64 lowercase hex characters.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["KNOWN_TYPES", "Membership", "parse_membership", "size_range"]

KNOWN_TYPES = frozenset({"EMAIL_ID_SHA256", "PHONE_NUMBER_SHA256", "DEVICE_ID_SHA256"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
BOOKABLE_MINIMUM = 1000
#: Files past this size are counted on a thread of their own as soon as GCS completes them,
#: and the audience stays PROCESSING until they are: counting 200 MB inside a status request
#: would put the emulator's work on the client's clock (and on its benchmarks).
BACKGROUND_BYTES = 1 << 20


@dataclass(frozen=True)
class Membership:
    """What one upload said: the file as sent, its layout, and (on demand) its rows.

    Parsing is deferred to the first use, as Spotify processes a file after GCS has accepted
    it: the final upload request answers at once, and an emulator parsing millions of rows in
    Python inside that request would make the client look slow in benchmarks.
    """

    data: bytes
    layout: str
    _counted: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @property
    def ready(self) -> bool:
        """Whether processing can settle now: a small file is counted on demand, a large one
        once its background count is done (see :data:`BACKGROUND_BYTES`)."""
        return len(self.data) <= BACKGROUND_BYTES or self._counted.is_set()

    def wait(self) -> None:
        """Block until :attr:`ready` (an admin override settles the audience first)."""
        if len(self.data) > BACKGROUND_BYTES:
            self._counted.wait()

    def count_in_background(self) -> None:
        """Count the file on a daemon thread, as Spotify processes a file after accepting it."""

        def count() -> None:
            try:
                _ = self._counts
            finally:
                self._counted.set()

        threading.Thread(target=count, name="sandbox-membership", daemon=True).start()

    @cached_property
    def well_formed(self) -> int:
        """Distinct rows with a known type and a lowercase 64-hex value."""
        return self._counts[0]

    @cached_property
    def people(self) -> int:
        """How many people the file can be about, the base of the matched-size estimate: the
        rows with a well-formed cell in ``wide``; in ``type,value``, where nothing ties one
        person's email to their phone, the largest type's count (a person has one of each)."""
        return self._counts[1]

    @cached_property
    def _counts(self) -> tuple[int, int]:
        if self.layout == "type,value":
            return _count_type_value(self.data)
        well_formed = {row for row in self.rows if _is_well_formed(*row)}
        return len(well_formed), self._wide_people()

    def _wide_people(self) -> int:
        if self.layout == "unreadable" or not self.rows:  # rows: () when not UTF-8
            return 0
        reader = csv.reader(io.StringIO(self.data.decode("utf-8")))
        header = [cell.strip() for cell in next(reader, [])]
        people = {
            tuple(record)
            for record in reader
            if any(_is_well_formed(k, v) for k, v in zip(header, record, strict=False) if v)
        }
        return len(people)

    @cached_property
    def rows(self) -> tuple[tuple[str, str], ...]:
        """Every data row as sent: ``(type, value)``, one per non-empty cell in ``wide``."""
        if self.layout == "unreadable":
            return ()
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError:  # a large file is decoded here first (parse_membership)
            return ()
        reader = csv.reader(io.StringIO(text))
        header = [cell.strip() for cell in next(reader, [])]
        rows: list[tuple[str, str]] = []
        if self.layout == "type,value":
            for record in reader:
                if record:
                    rows.append((record[0], record[1] if len(record) > 1 else ""))
        else:
            for record in reader:
                for column, cell in zip(header, record, strict=False):
                    if cell:
                        rows.append((column, cell))
        return tuple(rows)

    @property
    def bookable(self) -> bool:
        return self.well_formed >= BOOKABLE_MINIMUM


def _is_well_formed(kind: str, value: str) -> bool:
    return kind in KNOWN_TYPES and _SHA256.fullmatch(value) is not None


def _count_type_value(data: bytes) -> tuple[int, int]:
    """Distinct well-formed ``type,value`` rows, and the largest type's share of them, counted
    by polars (millions of rows a second)."""
    import polars as pl

    try:
        frame = pl.read_csv(
            io.BytesIO(data), infer_schema=False, truncate_ragged_lines=True, columns=[0, 1]
        )
    except pl.exceptions.PolarsError:
        return 0, 0
    kind, value = (pl.col(c) for c in frame.columns[:2])
    good = frame.filter(kind.is_in(sorted(KNOWN_TYPES)) & value.str.contains(r"^[0-9a-f]{64}$"))
    distinct = good.unique()
    per_type: list[int] = distinct.group_by(frame.columns[0]).len()["len"].to_list()
    return distinct.height, max(per_type, default=0)


def parse_membership(data: bytes) -> Membership:
    """Recognize the file; undecodable or headerless files give an empty membership.

    A large file is only checked as far as its header here (inside GCS's final answer): the
    rest is checked as it is counted, in the background, where bytes that are not UTF-8 count
    no row (polars refuses them), as an unreadable file's would.
    """
    try:
        if len(data) <= BACKGROUND_BYTES:
            data.decode("utf-8")
        head = data.partition(b"\n")[0].decode("utf-8")
    except UnicodeDecodeError:
        return Membership(data=b"", layout="unreadable")
    header = [cell.strip().lower() for cell in head.split(",")]
    members = Membership(data=data, layout="type,value" if header == ["type", "value"] else "wide")
    if len(data) > BACKGROUND_BYTES:
        members.count_in_background()
    return members


def size_range(people: int) -> dict[str, int]:
    """An approximate matched-users range, as Spotify reports it: never the exact count; 60-80%
    of the people the file can be about, in hundreds."""
    low = (people * 6 // 10) // 100 * 100
    high = -(-(people * 8 // 10) // 100) * 100
    return {"min": low, "max": high}
