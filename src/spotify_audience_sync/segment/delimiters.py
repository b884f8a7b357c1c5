"""CSV delimiters: sniffed from the header line, or named by ``--delimiter``.

European Excel writes ``;`` (the comma is the decimal separator there), databases and
spreadsheets export tabs and pipes. The header line is the one line that names columns and
holds no values, so it is where the delimiter is read: the candidate it has most of, outside
double quotes, wins.
"""

from __future__ import annotations

import re

from spotify_audience_sync.errors import InputError

__all__ = ["SNIFFED", "delimiter_named", "sniff_delimiter"]

#: Delimiters a header line is sniffed for, in the order ties are broken.
SNIFFED = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def delimiter_named(value: str) -> str:
    """A ``--delimiter`` value as the character: one character, or ``tab``/``\\t``, ``comma``,
    ``semicolon``, ``pipe``; InputError otherwise."""
    char = _DELIMITER_NAMES.get(value.casefold(), value)
    if len(char) != 1 or char in ('"', "\n", "\r"):
        raise InputError(
            f"--delimiter {value!r}: give one character, or tab, comma, semicolon or pipe"
        )
    return char


def sniff_delimiter(header: str) -> str:
    """The delimiter a header line uses: the one of :data:`SNIFFED` it has most of outside
    double quotes (a comma when it has none: a single column)."""
    outside = re.sub(r'"[^"]*"', "", header)
    counts = [(outside.count(d), -i, d) for i, d in enumerate(SNIFFED)]
    best = max(counts)
    return best[2] if best[0] else ","
