"""Phone numbers in the C extension: libphonenumber's patterns as DFAs over digits.

libphonenumber decides validity with regexes over the national number (``general_desc`` and
the number-type patterns, with their possible lengths) and picks a shared calling code's
region by ``leading_digits``. Those regexes only use a small regular subset (digit classes,
groups, alternation, counted repetition), so each compiles to a deterministic automaton over
the ten digits, and a number's validity becomes a table walk per pattern, in C
(``_native.c``, ``phones``). The automata are built here from :mod:`._phonemeta`, that is
from the installed ``phonenumbers`` package itself, lazily per calling code (all 245 regions
take ~1 s; a segment usually needs a handful).

The C code decides only the plain forms (an optional leading ``+``, digits, ``-.()/`` and
spaces) and only when every step is exact: a calling code whose regions all compiled, a
national prefix that is a plain digit string, no transform rule. Everything else is left to
the polars path (:mod:`.phones`), which stays the definition; the differential test holds the
two to libphonenumber's answers. Pure: no I/O.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, REGION_CODE_FOR_NON_GEO_ENTITY

from . import hashing
from ._phonemeta import RegionMeta, meta_for, regions_for_code

__all__ = ["DEFER", "Decided", "Unsupported", "compile_dfa", "decide"]

DEFER = 255  # the kernel's status for a value the polars path decides
_NEED = 254  # a calling code whose tables are not loaded yet
_CC_NEED, _CC_READY, _CC_DEFER = 2, 1, 3
#: Per region: calling code, national-prefix mode, four DFA starts, keyed, strip lengths, the
#: national prefix's DFA start (see ``_native.c``).
_FIELDS = 9
_NP_NONE, _NP_LITERALS, _NP_REGEX, _NP_DEFER = 0, 1, 2, 3
_NP_SLOTS = 8  # literals a region, each up to 7 digits
_DIGITS = frozenset(range(10))
_MAX_STATES = 50_000


class Unsupported(ValueError):
    """A pattern outside the regular subset this compiler handles."""


# --- regex → DFA ----------------------------------------------------------------------------
class _NFA:
    """Thompson construction over the digits, from ``re``'s own parse tree."""

    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset[int], int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def sequence(self, items: Sequence[Any], at: int) -> int:
        for op, arg in items:
            at = self.item(op, arg, at)
        return at

    def step(self, symbols: frozenset[int], at: int) -> int:
        nxt = self.state()
        self.edges[at].append((symbols, nxt))
        return nxt

    def item(self, op: Any, arg: Any, at: int) -> int:
        if op is sre.LITERAL:
            if not 0x30 <= arg <= 0x39:
                raise Unsupported(chr(arg))
            return self.step(frozenset({arg - 0x30}), at)
        if op is sre.IN:
            return self.step(_digit_class(arg), at)
        if op is sre.ANY:
            return self.step(_DIGITS, at)
        if op is sre.SUBPATTERN:
            return self.sequence(arg[3], at)
        if op is sre.BRANCH:
            end = self.state()
            for alternative in arg[1]:
                start = self.state()
                self.eps[at].append(start)
                self.eps[self.sequence(alternative, start)].append(end)
            return end
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, inner = arg
            for _ in range(low):
                at = self.sequence(inner, at)
            if high is sre.MAXREPEAT:
                loop = self.state()
                self.eps[at].append(loop)
                self.eps[self.sequence(inner, loop)].append(loop)
                return loop
            end = self.state()
            self.eps[at].append(end)
            for _ in range(high - low):
                at = self.sequence(inner, at)
                self.eps[at].append(end)
            return end
        raise Unsupported(str(op))


def _digit_class(items: Sequence[Any]) -> frozenset[int]:
    digits: set[int] = set()
    negate = False
    for op, arg in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            if 0x30 <= arg <= 0x39:
                digits.add(arg - 0x30)
        elif op is sre.RANGE:
            digits.update(c - 0x30 for c in range(arg[0], arg[1] + 1) if 0x30 <= c <= 0x39)
        elif op is sre.CATEGORY and arg is sre.CATEGORY_DIGIT:
            digits.update(_DIGITS)
        else:
            raise Unsupported(str(op))
    return frozenset(_DIGITS - digits if negate else digits)


@dataclass(frozen=True)
class DFA:
    """``table[state][digit]`` → next state or -1; ``accept[state]``; state 0 starts."""

    table: list[list[int]]
    accept: list[bool]

    def fullmatch(self, digits: str) -> bool:
        state = 0
        for ch in digits:
            state = self.table[state][ord(ch) - 0x30]
            if state < 0:
                return False
        return self.accept[state]


def compile_dfa(pattern: str) -> DFA:
    """A DFA for the strings of digits the pattern matches (``^``/``$`` at the ends only)."""
    items = list(sre_parse.parse(pattern))
    if items and items[0][0] is sre.AT:
        items = items[1:]
    if items and items[-1][0] is sre.AT:
        items = items[:-1]
    nfa = _NFA()
    start = nfa.state()
    final = nfa.sequence(items, start)

    # Each NFA state's epsilon closure once, and its moves per digit: subset construction
    # then only unions small precomputed sets.
    closures: list[frozenset[int]] = []
    for state in range(len(nfa.eps)):
        stack, seen = [state], {state}
        while stack:
            for nxt in nfa.eps[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        closures.append(frozenset(seen))
    moves: list[list[frozenset[int]]] = []
    for state in range(len(nfa.eps)):
        per_digit: list[set[int]] = [set() for _ in range(10)]
        for symbols, nxt in nfa.edges[state]:
            for digit in symbols:
                per_digit[digit] |= closures[nxt]
        moves.append([frozenset(x) for x in per_digit])

    first = closures[start]
    index, order = {first: 0}, [first]
    table: list[list[int]] = []
    for current in order:  # grows as new subsets appear
        row = []
        live = [moves[s] for s in current if nfa.edges[s]]
        for digit in range(10):
            subset = frozenset().union(*(m[digit] for m in live))
            if not subset:
                row.append(-1)
                continue
            if subset not in index:
                if len(order) >= _MAX_STATES:
                    raise Unsupported("too many states")
                index[subset] = len(order)
                order.append(subset)
            row.append(index[subset])
        table.append(row)
    return DFA(table, [final in subset for subset in order])


def prefix_literals(pattern: str) -> list[str] | None:
    """The strings a prefix regex can match, in the order ``re.match`` tries them, when they
    are few (at most 8, of at most 7 digits); else None.

    Backtracking tries alternatives in order and greedy repetitions longest first, so the first
    of these that starts a number is the prefix ``re.match`` finds.
    """
    try:
        found = _expand(list(sre_parse.parse(pattern)))
    except (Unsupported, re.error):
        return None
    if found is None or len(found) > _NP_SLOTS or any(len(x) > 7 for x in found):
        return None
    return found


def _expand(items: Sequence[Any]) -> list[str] | None:
    out = [""]
    for op, arg in items:
        if op is sre.LITERAL and 0x30 <= arg <= 0x39:
            options: list[str] | None = [chr(arg)]
        elif op is sre.IN:
            options = [str(d) for d in sorted(_digit_class(arg))]
        elif op is sre.SUBPATTERN:
            options = _expand(arg[3])
        elif op is sre.BRANCH:
            parts = [_expand(alternative) for alternative in arg[1]]
            options = None if any(p is None for p in parts) else [x for p in parts for x in p or []]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[1] is not sre.MAXREPEAT:
            inner = _expand(arg[2])
            counts = range(arg[0], arg[1] + 1)
            if inner is None or len(inner) ** arg[1] > 64:  # bounded before it is expanded
                return None
            options = []
            for count in reversed(counts) if op is sre.MAX_REPEAT else counts:
                reps = [""]
                for _ in range(count):
                    reps = [a + b for a in reps for b in inner]
                options.extend(reps)
        else:
            return None
        if options is None:
            return None
        out = [a + b for a in out for b in options]
        if len(out) > 64:
            return None
    return out


# --- the tables the kernel reads ------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    """Immutable arrays for one kernel call (a load builds new ones, never mutates these)."""

    buffers: tuple[npt.NDArray[Any], ...]
    index: dict[str, int]


class _Tables:
    """Regions' records and DFAs, loaded per calling code on first need; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trans: list[list[int]] = []
        self._accept: list[bool] = []
        self._regions: list[list[int]] = []
        self._np_text: list[bytes] = []
        self._index: dict[str, int] = {}
        self._cc_state = np.zeros(1000, dtype=np.uint8)
        for code in COUNTRY_CODE_TO_REGION_CODE:
            if 0 < code < 1000:
                self._cc_state[code] = _CC_NEED
        self._cc_first = np.zeros(1000, dtype=np.int32)
        self._cc_count = np.zeros(1000, dtype=np.int32)
        self._cc_list: list[int] = []
        self.snapshot = self._freeze()

    def _add_dfa(self, pattern: str | None) -> int:
        if pattern is None:
            return -1
        dfa = compile_dfa(pattern)
        base = len(self._trans)
        self._trans.extend([[-1 if t < 0 else t + base for t in row] for row in dfa.table])
        self._accept.extend(dfa.accept)
        return base

    def _add_region(self, m: RegionMeta) -> int:
        if m.key in self._index:
            return self._index[m.key]
        mode, literals, np_dfa = _NP_NONE, [], -1
        if m.national_prefix is not None:
            found = None if m.transform is not None else prefix_literals(m.national_prefix)
            if found is not None:
                mode, literals = _NP_LITERALS, found
            else:
                try:
                    mode, np_dfa = _NP_REGEX, self._add_dfa(m.national_prefix)
                except (Unsupported, re.error):
                    mode = _NP_DEFER
        strip = sum(1 << n for n in m.strip_ok_lengths if n < 31)
        record = [
            m.country_code,
            mode,
            self._add_dfa(m.general),
            self._add_dfa(m.valid_general),
            self._add_dfa(m.valid_types),
            self._add_dfa(m.leading_digits),
            int(m.keyed),
            strip,
            np_dfa,
        ]
        self._regions.append(record)
        slots = [bytes([len(x)]) + x.encode().ljust(7, b"\0") for x in literals]
        slots += [b"\xff" * 8] * (_NP_SLOTS - len(slots))
        self._np_text.append(b"".join(slots))
        self._index[m.key] = len(self._regions) - 1
        return self._index[m.key]

    def _load_code(self, code: int) -> None:
        if self._cc_state[code] != _CC_NEED:
            return
        keys = regions_for_code(code)
        metas = [meta_for(k) for k in keys]
        state = _CC_READY
        if (
            not keys
            or any(m is None for m in metas)
            or keys[0].startswith(REGION_CODE_FOR_NON_GEO_ENTITY)
        ):
            state = _CC_DEFER
        else:
            try:
                rows = [self._add_region(m) for m in metas if m is not None]
            except (Unsupported, re.error):
                state = _CC_DEFER
            else:
                self._cc_first[code] = len(self._cc_list)
                self._cc_count[code] = len(rows)
                self._cc_list.extend(rows)
        self._cc_state[code] = state

    def load(self, codes: Sequence[int]) -> _Snapshot:
        """Make the tables of these calling codes available; return the new snapshot."""
        with self._lock:
            before = self._cc_state.copy()
            for code in codes:
                if 0 < code < 1000:
                    self._load_code(int(code))
            if not np.array_equal(before, self._cc_state):
                self.snapshot = self._freeze()
            return self.snapshot

    def home(self, region: str) -> int | None:
        """The default region's record (its calling code loaded first), None if unsupported."""
        m = meta_for(region)
        if m is None:
            return None
        snapshot = self.load([m.country_code])
        return snapshot.index.get(m.key)

    def _freeze(self) -> _Snapshot:
        trans = np.array(self._trans or [[-1] * 10], dtype=np.int32).reshape(-1, 10)
        accept = np.array(self._accept or [False], dtype=np.uint8)
        regions = np.array(self._regions or [[0] * _FIELDS], dtype=np.int32).reshape(-1, _FIELDS)
        np_text = np.frombuffer(b"".join(self._np_text) or b"\xff" * 8 * _NP_SLOTS, dtype=np.uint8)
        cc_list = np.array(self._cc_list or [0], dtype=np.int32)
        buffers = (
            trans,
            accept,
            regions,
            np_text.copy(),
            self._cc_first.copy(),
            self._cc_count.copy(),
            cc_list,
            self._cc_state.copy(),
        )
        return _Snapshot(buffers, dict(self._index))


_TABLES: _Tables | None = None
_TABLES_LOCK = threading.Lock()


def _tables() -> _Tables:
    global _TABLES
    with _TABLES_LOCK:
        if _TABLES is None:
            _TABLES = _Tables()
        return _TABLES


@dataclass(frozen=True)
class Decided:
    """The kernel's answers, row for row: status codes (:data:`DEFER` where polars decides),
    and per row either a 64-byte hex digest (``hashes``) or E.164 text (length byte, digits)."""

    codes: npt.NDArray[np.uint8]
    out: npt.NDArray[np.uint8]
    deferred: int


def decide(
    values: pl.Series,
    region: str,
    codes: tuple[int, int, int, int],
    *,
    hashes: bool,
) -> Decided | None:
    """Decide the plain numbers of a column in C; None where the C path does not apply.

    ``codes`` are the status codes for (kept, empty, invalid_number, not_a_number). Only
    ``valid`` mode.
    """
    native = hashing.native_module()
    if native is None:
        return None
    tables = _tables()
    home = tables.home(region)
    m = meta_for(region)
    if home is None or m is None:
        return None
    idd = (m.idd_literal or "").encode()
    national_ok = m.idd is None or m.idd_literal is not None
    column = values.cast(pl.String)
    views = hashing.views(column)
    if views is None:
        return None
    n = column.len()
    width = 64 if hashes else 24
    status = np.empty(n, dtype=np.uint8)
    out = np.empty((n, width), dtype=np.uint8)
    need = np.empty(n, dtype=np.uint16)
    args = (home, national_ok, idd, str(m.country_code).encode(), *codes, int(not hashes))
    snapshot = tables.snapshot
    deferred = native.phones(*views.args(), n, snapshot.buffers, *args, status, out, need)
    if column.null_count():  # a null's view is not a value
        status[column.is_null().to_numpy()] = codes[1]
        deferred = int(np.count_nonzero(status >= _NEED))
    waiting = np.flatnonzero(status == _NEED)
    if len(waiting):
        snapshot = tables.load(sorted({int(c) for c in need[waiting]}))
        again = decide_rows(native, column.gather(waiting), snapshot, args, width)
        status[waiting], out[waiting] = again
        deferred = int(np.count_nonzero(status >= _NEED))
    return Decided(status, out, deferred)


def decide_rows(
    native: Any, column: pl.Series, snapshot: _Snapshot, args: tuple[Any, ...], width: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """One more kernel pass over some rows, with tables that now hold their calling codes."""
    views = hashing.views(column)
    assert views is not None  # a gathered String column exports as views like its source
    n = column.len()
    status = np.empty(n, dtype=np.uint8)
    out = np.empty((n, width), dtype=np.uint8)
    need = np.empty(n, dtype=np.uint16)
    native.phones(*views.args(), n, snapshot.buffers, *args, status, out, need)
    status[status == _NEED] = DEFER  # loaded now; a code still missing is one we cannot use
    return status, out
