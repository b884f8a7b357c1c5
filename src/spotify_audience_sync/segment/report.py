"""What a run did, in numbers: for the JSON report file and the human summary. Never values.

A report holds counts, names of columns and settings, sizes and timings only, so it can be
stored and shared freely: nothing in it identifies a person.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spotify_audience_sync.segment.outputs import AtomicFile

__all__ = ["ColumnCounts", "PrepareReport", "TypeCounts", "plural", "write_json"]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``3,000 rows``: a count with its noun, for sentences people read."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


@dataclass
class ColumnCounts:
    """Per input column, when a type has several: where that column's values ended up."""

    hashed: int = 0
    prehashed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


#: TypeCounts fields left out of the JSON when they do not apply (None).
_OPTIONAL = ("fallback", "row_country", "country_unknown", "repaired", "columns", "suppressed")


@dataclass
class TypeCounts:
    """Per identifier type: where every input value ended up."""

    column: str
    hashed: int = 0
    prehashed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    written: int = 0
    #: Phones only: values libphonenumber itself decided, because the vectorized rules could not.
    fallback: int | None = None
    #: Phones only, with a country column: phones kept that were read with their row's country
    #: (not the default region; a number in international form names its own).
    row_country: int | None = None
    #: Phones only, with a country column: country values that named no known country (their
    #: rows used the default region). Counted, never shown.
    country_unknown: int | None = None
    #: Emails only: cells each repair touched (``mailto:`` dropped, a display name unwrapped,
    #: several addresses split, ...; see ``identifiers/emails.py``), counted, never shown.
    repaired: dict[str, int] | None = None
    #: With several columns of the type: each one's counts, by column (as shown).
    columns: dict[str, ColumnCounts] | None = None
    #: With a suppression list: distinct identifiers removed because the list holds them.
    suppressed: int | None = None

    @property
    def accepted(self) -> int:
        """Values that made it through the rules (before deduplication)."""
        return self.hashed + self.prehashed

    @property
    def rejected_total(self) -> int:
        """Values rejected, all reasons together (blank cells included)."""
        return sum(self.rejected.values())


@dataclass
class PrepareReport:
    """The outcome of turning a segment into an upload file."""

    input: str
    format: str
    layout: str
    options: dict[str, Any]
    output: str | None = None
    rows_read: int = 0
    #: Input rows with at least one accepted identifier (before deduplication: a person on two
    #: rows counts twice): the people a per-person match rate is measured against.
    rows_with_identifier: int = 0
    identifiers: dict[str, TypeCounts] = field(default_factory=dict)
    #: Rows with fewer fields than the header, read as blanks (often a report's footer lines).
    short_rows: int = 0
    #: The consent column applied, if any, and the rows it left out.
    consent_column: str | None = None
    no_consent: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    fingerprint: str | None = None
    seconds: float = 0.0
    #: Findings a person should look at (never values): mostly rejected columns, and so on.
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Input rows per second of wall time, end to end."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; derived figures included so readers need not recompute them."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["rows_per_second"] = round(self.rows_per_second)
        for key, counts in self.identifiers.items():
            for optional in _OPTIONAL:
                if getattr(counts, optional) is None:
                    del data["identifiers"][key][optional]
            data["identifiers"][key]["accepted"] = counts.accepted
            data["identifiers"][key]["rejected_total"] = counts.rejected_total
        return data

    def _extra_lines(self) -> list[str]:
        """Per-column counts of types read from several columns; consent; suppression."""
        lines = []
        for key, c in self.identifiers.items():
            for column, counts in (c.columns or {}).items():
                rejected = sum(counts.rejected.values())
                lines.append(
                    f"    {key} column {column!r}: {counts.hashed + counts.prehashed:,} "
                    f"accepted, {rejected:,} rejected"
                )
        if self.consent_column is not None:
            lines.append(
                f"  consent from {self.consent_column!r}: "
                f"{plural(self.no_consent, 'row')} without consent left out"
            )
        suppressed = {k: c.suppressed for k, c in self.identifiers.items() if c.suppressed}
        if any(c.suppressed is not None for c in self.identifiers.values()):
            shown = ", ".join(f"{k} {n:,}" for k, n in suppressed.items()) or "none"
            lines.append(f"  suppressed by the exclusion lists: {shown}")
        return lines

    def summary(self) -> str:
        """A small table for a person, on stderr."""
        lines = [
            f"read {plural(self.rows_read, 'row')} from {self.input} ({self.format}) "
            f"in {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s); "
            f"{self.rows_with_identifier:,} with an accepted identifier",
            f"  {'type':<11}{'column':<14}{'written':>12}{'hashed':>12}{'pre-hashed':>12}"
            f"{'duplicates':>12}{'rejected':>12}",
        ]
        for key, c in self.identifiers.items():
            reasons = ", ".join(f"{r} {n:,}" for r, n in c.rejected.items() if n)
            column = c.column if len(c.column) <= 13 else c.column[:12] + "…"
            lines.append(
                f"  {key:<11}{column:<14}{c.written:>12,}{c.hashed:>12,}{c.prehashed:>12,}"
                f"{c.duplicates:>12,}{c.rejected_total:>12,}"
                + (f"  ({reasons})" if reasons else "")
            )
            if c.row_country is not None:
                lines.append(
                    f"  {'':<11}{plural(c.row_country, 'phone')} read with their row's country"
                    f" ({plural(c.country_unknown or 0, 'unknown country value')})"
                )
        for key, c in self.identifiers.items():
            repairs = ", ".join(f"{r} {n:,}" for r, n in (c.repaired or {}).items() if n)
            if repairs:
                lines.append(f"  {key} values repaired: {repairs}")
        lines.extend(self._extra_lines())
        verb, target = ("wrote", f" to {self.output}") if self.output else ("prepared", "")
        lines.append(
            f"{verb} {plural(self.rows_written, 'row')}, {plural(self.bytes_written, 'byte')} "
            f"({self.layout} layout){target}"
        )
        return "\n".join(lines)


def write_json(path: str | Path, data: dict[str, Any], flag: str = "--report") -> None:
    """Write a report atomically (partial file + rename), so readers never see half a report."""
    with AtomicFile(path, flag, mode=0o644) as out:
        out.write((json.dumps(data, indent=2, sort_keys=False) + "\n").encode())
        out.commit()
