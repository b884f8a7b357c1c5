"""Is a column what it claims to be? Reject rates per column, with the likely fix.

A Mirror sync replaces the whole audience, so a column whose values are mostly rejected (UK
numbers read with the default region US, phones a spreadsheet wrote as floats, the wrong column
mapped) would strip a type from a live audience and still "succeed". The same findings are
warnings for ``prepare`` and a refusal for ``sync`` (exit 4, nothing changed).
"""

from __future__ import annotations

from dataclasses import dataclass

from spotify_audience_sync.segment.report import PrepareReport, TypeCounts

__all__ = ["DEFAULT_MAX_REJECT_RATE", "ColumnProblem", "column_problems", "format_warnings"]

#: A column with at least this share of its non-empty values rejected is refused by `sync`.
DEFAULT_MAX_REJECT_RATE = 0.5

# Not a sign of a wrong column: blank cells, and device IDs zeroed by "limit ad tracking".
_NOT_COUNTED = frozenset({"empty", "zeroed"})

_FLAG = {"email": "--email-column", "phone": "--phone-column", "device_id": "--device-id-column"}


@dataclass(frozen=True)
class ColumnProblem:
    """One identifier column whose values are mostly rejected."""

    type: str
    column: str
    rejected: int
    non_empty: int
    reason: str
    """The most frequent rejection reason."""
    hint: str

    @property
    def rate(self) -> float:
        """Rejected share of the non-empty values."""
        return self.rejected / self.non_empty

    def message(self) -> str:
        """One sentence: the column, how much was rejected and why, and what to try."""
        return (
            f"{self.type} column {self.column!r}: {self.rejected:,} of {self.non_empty:,} "
            f"non-empty values ({self.rate:.0%}) were rejected, mostly {self.reason}; {self.hint}"
        )


def _hint(kind: str, reason: str, counts: TypeCounts, region: str) -> str:
    if reason == "scientific_notation":
        return (
            "a spreadsheet wrote the numbers in scientific notation (4.15555E+09), which lost "
            "digits: export the column as text and run again"
        )
    if kind == "phone" and reason in ("invalid_number", "too_short", "too_long"):
        return (
            f"numbers written without a country code are read as {region} numbers: if they are "
            "from another country, pass --default-region (e.g. --default-region GB)"
        )
    if kind == "phone" and reason == "invalid_country_code":
        return "the numbers start with an unknown country code: check --default-region"
    return f"is it the right column? Name the right one with {_FLAG.get(kind, '--*-column')}"


def column_problems(report: PrepareReport, max_reject_rate: float) -> list[ColumnProblem]:
    """Columns whose rejected share of non-empty values is at least ``max_reject_rate``
    (1 turns the check off: a column of nothing but rejects is then let through)."""
    problems = []
    region = str(report.options.get("default_region", "US"))
    for kind, counts in report.identifiers.items():
        reasons = {r: n for r, n in counts.rejected.items() if r not in _NOT_COUNTED and n}
        rejected = sum(reasons.values())
        non_empty = counts.accepted + rejected
        if not rejected or max_reject_rate >= 1 or rejected < max_reject_rate * non_empty:
            continue
        reason = max(reasons, key=lambda r: reasons[r])
        problems.append(
            ColumnProblem(
                kind,
                counts.column,
                rejected,
                non_empty,
                reason,
                _hint(kind, reason, counts, region),
            )
        )
    return problems


def format_warnings(report: PrepareReport, max_reject_rate: float) -> list[str]:
    """What ``prepare`` warns about: columns over the threshold, and any scientific notation."""
    warnings = [problem.message() for problem in column_problems(report, max_reject_rate)]
    for kind, counts in report.identifiers.items():
        lost = counts.rejected.get("scientific_notation", 0)
        if lost and not any(w.startswith(f"{kind} column") for w in warnings):
            warnings.append(
                f"{kind} column {counts.column!r}: {lost:,} values are in scientific notation "
                "(4.15555E+09), which lost digits: export the column as text"
            )
    if report.short_rows:
        warnings.append(
            f"{report.short_rows:,} of {report.rows_read:,} rows have fewer fields than the "
            "header and were read with blanks for the missing ones (a report's footer lines?)"
        )
    return warnings
