"""Reading an uploaded customer-list file the way the emulator counts it.

Both layouts the contract allows: ``type,value`` rows, or "wide" with one column per type.
A row is well-formed when its type is known and its value is 64 lowercase hex characters.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

__all__ = ["KNOWN_TYPES", "Membership", "parse_membership", "size_range"]

KNOWN_TYPES = frozenset({"EMAIL_ID_SHA256", "PHONE_NUMBER_SHA256", "DEVICE_ID_SHA256"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
BOOKABLE_MINIMUM = 1000


@dataclass(frozen=True)
class Membership:
    """What one upload said: every data row as sent, and how many were well-formed."""

    rows: tuple[tuple[str, str], ...]
    well_formed: int
    layout: str

    @property
    def bookable(self) -> bool:
        return self.well_formed >= BOOKABLE_MINIMUM


def _is_well_formed(kind: str, value: str) -> bool:
    return kind in KNOWN_TYPES and _SHA256.fullmatch(value) is not None


def parse_membership(data: bytes) -> Membership:
    """Parse the file; undecodable or headerless files give an empty membership."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Membership(rows=(), well_formed=0, layout="unreadable")
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip() for cell in next(reader, [])]
    rows: list[tuple[str, str]] = []
    if [h.lower() for h in header] == ["type", "value"]:
        layout = "type,value"
        for record in reader:
            if record:
                rows.append((record[0], record[1] if len(record) > 1 else ""))
    else:
        layout = "wide"
        for record in reader:
            for column, cell in zip(header, record, strict=False):
                if cell:
                    rows.append((column, cell))
    well_formed = len({row for row in rows if _is_well_formed(*row)})
    return Membership(rows=tuple(rows), well_formed=well_formed, layout=layout)


def size_range(well_formed: int) -> dict[str, int]:
    """An approximate matched-users range, as Spotify reports it: never the exact count."""
    if well_formed < BOOKABLE_MINIMUM:
        return {"min": 0, "max": 0}
    low = (well_formed * 6 // 10) // 100 * 100
    high = -(-(well_formed * 8 // 10) // 100) * 100
    return {"min": low, "max": high}
