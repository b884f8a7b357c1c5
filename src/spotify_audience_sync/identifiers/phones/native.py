"""Phone numbers in the C extension: libphonenumber's patterns as DFAs over digits.

libphonenumber decides validity with regexes over the national number (``general_desc`` and
the number-type patterns, with their possible lengths) and picks a shared calling code's
region by ``leading_digits``. Those regexes only use a small regular subset (digit classes,
groups, alternation, counted repetition), so each compiles to a deterministic automaton over
the ten digits, and a number's validity becomes a table walk per pattern, in C
(``_native/phone.c``, ``phones``). The automata are built here from :mod:`.metadata`, that is
from the installed ``phonenumbers`` package itself, lazily per calling code (all 245 regions
take ~1 s; a segment usually needs a handful).

The C code decides only the plain forms (an optional leading ``+``, digits, ``-.()/`` and
spaces) and only when every step is exact: a calling code whose regions all compiled, a
national prefix that is a plain digit string, no transform rule. Everything else is left to
the polars path (:mod:`.normalize`), which stays the definition; the differential test holds the
two to libphonenumber's answers. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import platformdirs
import polars as pl
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, REGION_CODE_FOR_NON_GEO_ENTITY

from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.identifiers.extension import Native, PhoneArgs, call_phones
from spotify_audience_sync.identifiers.phones import metadata as _phonemeta
from spotify_audience_sync.identifiers.phones.metadata import (
    PHONENUMBERS_VERSION,
    RegionMeta,
    meta_for,
    regions_for_code,
)

__all__ = ["DEFER", "Decided", "Unsupported", "compile_dfa", "decide", "use_cache_dir"]

DEFER = 255  # the kernel's status for a value the polars path decides
_NEED = 254  # a calling code whose tables are not loaded yet
_CC_NEED, _CC_READY, _CC_DEFER = 2, 1, 3
#: Per region: calling code, national-prefix mode, four DFA starts, keyed, strip lengths, the
#: national prefix's DFA start, the international prefix's DFA start, too-long lengths (see
#: ``_native/phone.c``).
_FIELDS = 11
#: The fields that hold DFA starts (rebased when tables are joined).
_DFA_FIELDS = (2, 3, 4, 5, 8, 9)
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
            if inner is None or len(inner) ** arg[1] > 64:  # bounded before it is expanded
                return None
            options = _repeat(inner, arg[0], arg[1], greedy=op is sre.MAX_REPEAT)
        else:
            return None
        if options is None:
            return None
        out = [a + b for a in out for b in options]
        if len(out) > 64:
            return None
    return out


def _repeat(inner: list[str], low: int, high: int, *, greedy: bool) -> list[str]:
    """A bounded repetition's strings in backtracking order: depth first, one more repetition
    before stopping when greedy, stopping first when lazy."""

    def go(count: int) -> list[str]:
        more = [x + y for x in inner for y in go(count + 1)] if count < high else []
        stop = [""] if count >= low else []
        return more + stop if greedy else stop + more

    return go(0)


# --- the tables the kernel reads ------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    """Immutable arrays for one kernel call (a load builds new ones, never mutates these)."""

    buffers: tuple[npt.NDArray[Any], ...]
    index: dict[str, int]


@dataclass(frozen=True)
class _CodeTables:
    """One calling code's regions, DFA states numbered from 0: built once, cached on disk."""

    state: int
    keys: tuple[str, ...]
    trans: npt.NDArray[np.int32]
    accept: npt.NDArray[np.uint8]
    regions: npt.NDArray[np.int32]
    np_text: npt.NDArray[np.uint8]


class _Builder:
    """Compiles the regions of one calling code into :class:`_CodeTables`."""

    def __init__(self) -> None:
        self.trans: list[list[int]] = []
        self.accept: list[bool] = []
        self.regions: list[list[int]] = []
        self.np_text: list[bytes] = []

    def dfa(self, pattern: str | None) -> int:
        if pattern is None:
            return -1
        dfa = compile_dfa(pattern)
        base = len(self.trans)
        self.trans.extend([[-1 if t < 0 else t + base for t in row] for row in dfa.table])
        self.accept.extend(dfa.accept)
        return base

    def region(self, m: RegionMeta) -> None:
        mode, literals, np_dfa = _NP_NONE, [], -1
        if m.national_prefix is not None:
            found = None if m.transform is not None else prefix_literals(m.national_prefix)
            if found is not None:
                mode, literals = _NP_LITERALS, found
            else:
                try:
                    mode, np_dfa = _NP_REGEX, self.dfa(m.national_prefix)
                except (Unsupported, re.error):
                    mode = _NP_DEFER
        strip = sum(1 << n for n in m.strip_ok_lengths if n < 31)
        # Whether a national number that starts with the default calling code is too long
        # without it (the kernel defers numbers of 31 digits and more).
        too_long = sum(1 << n for n in m.too_long_lengths if n < 31)
        general, valid_general = self.dfa(m.general), self.dfa(m.valid_general)
        valid_types, leading = self.dfa(m.valid_types), self.dfa(m.leading_digits)
        record = [m.country_code, mode, general, valid_general, valid_types, leading]
        record.extend([int(m.keyed), strip, np_dfa, self.idd_dfa(m), too_long])
        self.regions.append(record)
        slots = [bytes([len(x)]) + x.encode().ljust(7, b"\0") for x in literals]
        slots += [b"\xff" * 8] * (_NP_SLOTS - len(slots))
        self.np_text.append(b"".join(slots))

    def idd_dfa(self, m: RegionMeta) -> int:
        """An international prefix that is not one digit string, as a DFA (-1: none, or not
        compilable): the kernel then takes a number as national only where it cannot match."""
        if m.idd is None or m.idd_literal is not None:
            return -1
        try:
            return self.dfa(m.idd)
        except (Unsupported, re.error):
            return -1

    def tables(self, state: int, keys: tuple[str, ...]) -> _CodeTables:
        return _CodeTables(
            state,
            keys,
            np.array(self.trans, dtype=np.int32).reshape(-1, 10),
            np.array(self.accept, dtype=np.uint8),
            np.array(self.regions, dtype=np.int32).reshape(-1, _FIELDS),
            np.frombuffer(b"".join(self.np_text), dtype=np.uint8).reshape(-1, 8 * _NP_SLOTS),
        )


def _build_code(code: int) -> _CodeTables:
    """A calling code's tables; state DEFER when the C path cannot decide its numbers."""
    keys = regions_for_code(code)
    builder = _Builder()
    metas = [meta_for(k) for k in keys]
    if not keys or keys[0].startswith(REGION_CODE_FOR_NON_GEO_ENTITY):
        return _Builder().tables(_CC_DEFER, ())
    try:
        for m in metas:
            if m is None:
                return _Builder().tables(_CC_DEFER, ())
            builder.region(m)
    except (Unsupported, re.error):
        return _Builder().tables(_CC_DEFER, ())
    return builder.tables(_CC_READY, keys)


# --- the on-disk cache ----------------------------------------------------------------------
#: Bump when the table layout or the compiler changes: old cache files are then ignored.
_CACHE_FORMAT = 4
_phonemeta_file = _phonemeta.__file__ or ""


@cache
def _source_stamp() -> str:
    """A hash of the code that builds the tables: a changed compiler never reads old ones."""
    digest = hashlib.sha256()
    for module in (__file__, _phonemeta_file):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:12]


#: Where compiled tables are cached: a folder, None for the user's cache dir, "" for none.
_cache_root: str | None = None


def use_cache_dir(root: str | None) -> None:
    """Set where compiled tables are cached (a folder; None: the user's cache dir; "": none).

    The process's choice (``SPOTIFY_AUDIENCE_SYNC_CACHE_DIR``) is read by ``settings``, the one
    reader of the environment, and passed here by the pipeline before a run.
    """
    global _cache_root
    _cache_root = root


def _cache_dir() -> Path | None:
    """The cache folder for this phonenumbers and compiler; None when turned off."""
    root = _cache_root
    if root == "":
        return None
    base = Path(root) if root else platformdirs.user_cache_path("spotify-audience-sync")
    return base / f"phones-{PHONENUMBERS_VERSION}-{_CACHE_FORMAT}-{_source_stamp()}"


def _read_cached(path: Path, code: int) -> _CodeTables | None:
    """A cached calling code's tables if the file is whole and consistent, else None."""
    with np.load(path, allow_pickle=False) as saved:
        keys = tuple(json.loads(bytes(saved["keys"]).decode()))
        tables = _CodeTables(
            int(saved["state"]),
            keys,
            saved["trans"].astype(np.int32).reshape(-1, 10),
            saved["accept"].astype(np.uint8),
            saved["regions"].astype(np.int32).reshape(-1, _FIELDS),
            saved["np_text"].astype(np.uint8).reshape(-1, 8 * _NP_SLOTS),
        )
    expected = regions_for_code(code) if tables.state == _CC_READY else ()
    consistent = (
        tables.state in (_CC_READY, _CC_DEFER)
        and keys == expected
        and len(tables.regions) == len(tables.np_text) == len(keys)
        and len(tables.trans) == len(tables.accept)
        and bool((tables.trans < len(tables.trans)).all())
        and bool((tables.trans >= -1).all())
        and bool((tables.regions[:, list(_DFA_FIELDS)] < len(tables.trans)).all())
    )
    return tables if consistent else None


def _cached_code(code: int) -> _CodeTables:
    """:func:`_build_code` through the cache: compiling +1's 25 regions takes ~0.15 s, reading
    them back ~1 ms. Only arrays are stored (no pickle); anything unreadable, inconsistent or
    unwritable is rebuilt or skipped: the cache is an optimisation, never a failure."""
    directory = _cache_dir()
    path = directory / f"{code}.npz" if directory else None
    if path is not None:
        try:
            cached = _read_cached(path, code) if path.exists() else None
        except Exception:
            cached = None
        if cached is not None:
            return cached
    tables = _build_code(code)
    if path is not None:
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                np.savez(
                    out,
                    state=np.array(tables.state),
                    keys=np.frombuffer(json.dumps(list(tables.keys)).encode(), dtype=np.uint8),
                    trans=tables.trans,
                    accept=tables.accept,
                    regions=tables.regions,
                    np_text=tables.np_text,
                )
            os.replace(partial, path)
        except OSError:
            partial.unlink(missing_ok=True)
    return tables


class _Tables:
    """Every loaded calling code's tables, concatenated for the kernel; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[_CodeTables] = []
        self._states = 0
        self._regions = 0
        self._index: dict[str, int] = {}
        self._cc_state = np.zeros(1000, dtype=np.uint8)
        for code in COUNTRY_CODE_TO_REGION_CODE:
            if 0 < code < 1000:
                self._cc_state[code] = _CC_NEED
        self._cc_first = np.zeros(1000, dtype=np.int32)
        self._cc_count = np.zeros(1000, dtype=np.int32)
        self._rebased: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
        self.snapshot = self._freeze()

    def _load_code(self, code: int) -> None:
        if self._cc_state[code] != _CC_NEED:
            return
        part = _cached_code(code)
        if part.state == _CC_READY:
            base, first = self._states, self._regions
            trans = np.where(part.trans < 0, -1, part.trans + base).astype(np.int32)
            regions = part.regions.copy()
            for field in _DFA_FIELDS:
                column = regions[:, field]
                regions[:, field] = np.where(column < 0, -1, column + base)
            self._parts.append(part)
            self._rebased.append((trans, regions))
            self._states += len(part.trans)
            self._regions += len(part.regions)
            for i, key in enumerate(part.keys):
                self._index[key] = first + i
            self._cc_first[code] = first
            self._cc_count[code] = len(part.keys)
        self._cc_state[code] = part.state

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
        def joined(arrays: list[npt.NDArray[Any]], empty: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.concatenate(arrays) if arrays else empty

        trans = joined([t for t, _ in self._rebased], np.full((1, 10), -1, dtype=np.int32))
        regions = joined([r for _, r in self._rebased], np.zeros((1, _FIELDS), dtype=np.int32))
        empty_text = np.full((1, 8 * _NP_SLOTS), 0xFF, dtype=np.uint8)
        buffers = (
            np.ascontiguousarray(trans, dtype=np.int32),
            joined([p.accept for p in self._parts], np.zeros(1, dtype=np.uint8)),
            np.ascontiguousarray(regions, dtype=np.int32),
            np.ascontiguousarray(joined([p.np_text for p in self._parts], empty_text)),
            self._cc_first.copy(),
            self._cc_count.copy(),
            # Each code's regions are consecutive, so the list is simply 0..regions-1.
            np.arange(max(1, self._regions), dtype=np.int32),
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


#: Bytes per default region in the kernel's ``defaults`` (see ``_native/phone.c``).
_DEFAULT_BYTES = 24


def _defaults(tables: _Tables, keys: Sequence[str]) -> tuple[npt.NDArray[np.uint8], bool]:
    """The kernel's record for each default region, and whether any of them it can use.

    A record: the region's index in the tables (-1: not there, its rows are deferred), whether
    a national number is decided without an IDD, the IDD's and calling code's digits.
    """
    metas = [meta_for(key) for key in keys]
    snapshot = tables.load(sorted({m.country_code for m in metas if m is not None}))
    records = np.zeros((len(keys), _DEFAULT_BYTES), dtype=np.uint8)
    usable = False
    for i, m in enumerate(metas):
        home = None if m is None else snapshot.index.get(m.key)
        if m is None or home is None:
            records[i, :4] = np.frombuffer(np.int32(-1).tobytes(), np.uint8)
            records[i, 6], records[i, 16] = 1, ord("1")
            continue
        usable = True
        idd, dcc = (m.idd_literal or "").encode(), str(m.country_code).encode()
        # A national number is decided here unless an international prefix might start it:
        # none, a digit string compared here, or a DFA in the region's record.
        idd_dfa = int(snapshot.buffers[2][home, 9]) >= 0
        national_ok = m.idd is None or m.idd_literal is not None or idd_dfa
        records[i, :4] = np.frombuffer(np.int32(home).tobytes(), np.uint8)
        records[i, 4:7] = (int(national_ok), len(idd), len(dcc))
        records[i, 8 : 8 + len(idd)] = np.frombuffer(idd, np.uint8)
        records[i, 16 : 16 + len(dcc)] = np.frombuffer(dcc, np.uint8)
    return records, usable


def _row_defaults(
    region: str, regions: pl.Series | None
) -> tuple[list[str], npt.NDArray[np.uint16]]:
    """The distinct default regions, and each row's index among them (empty: all the first)."""
    none = np.zeros(0, dtype=np.uint16)
    if regions is None:
        return [region], none
    keys = sorted(regions.drop_nulls().unique().to_list()) or [region]
    if len(keys) == 1 and regions.null_count() == 0:
        return keys, none
    if regions.null_count():
        keys = sorted({*keys, region})
        regions = regions.fill_null(region)
    ids = regions.cast(pl.Enum(keys)).to_physical().cast(pl.UInt16).to_numpy()
    return keys, np.ascontiguousarray(ids, dtype=np.uint16)


def decide(
    values: pl.Series,
    region: str,
    codes: tuple[int, int, int, int],
    *,
    hashes: bool,
    regions: pl.Series | None = None,
) -> Decided | None:
    """Decide the plain numbers of a column in C; None where the C path does not apply.

    ``codes`` are the status codes for (kept, empty, invalid_number, not_a_number). Only
    ``valid`` mode. ``regions``, when given, is each row's default region (null: ``region``).
    """
    native = hashing.native_module()
    if native is None:
        return None
    tables = _tables()
    keys, ids = _row_defaults(region, regions)
    defaults, usable = _defaults(tables, keys)
    column = values.cast(pl.String)
    views = hashing.views(column) if usable else None
    if views is None:
        return None
    width = 64 if hashes else 24
    rules = (*codes, int(not hashes))
    kernel = _Kernel(native, defaults, rules, width)
    status, out, need, deferred = kernel.run(views, column.len(), tables.snapshot, ids)
    waiting = np.flatnonzero(status == _NEED)
    if len(waiting):
        snapshot = tables.load(sorted({int(c) for c in need[waiting]}))
        rows = column.gather(waiting)
        rows_views = hashing.views(rows)
        assert rows_views is not None  # rows gathered from a String column export as views
        again = kernel.run(rows_views, rows.len(), snapshot, ids[waiting] if len(ids) else ids)
        status[waiting], out[waiting] = again[0], again[1]
        status[status == _NEED] = DEFER  # loaded now; a code still missing is one we cannot use
        deferred = int(np.count_nonzero(status >= _NEED))
    return Decided(status, out, deferred)


@dataclass(frozen=True)
class _Kernel:
    """What every pass of the kernel over one column shares."""

    native: Native
    defaults: npt.NDArray[np.uint8]
    rules: tuple[int, int, int, int, int]
    width: int

    def run(
        self,
        views: hashing.Exported,
        n: int,
        snapshot: _Snapshot,
        ids: npt.NDArray[np.uint16],
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint16], int]:
        """One pass: status codes, outputs, the calling code each P_NEED row needs."""
        status = np.empty(n, dtype=np.uint8)
        out = np.empty((n, self.width), dtype=np.uint8)
        need = np.empty(n, dtype=np.uint16)
        # Nulls come out as empty: the kernel reads the validity bitmap.
        args = PhoneArgs(
            *views.args(), n, snapshot.buffers, self.defaults, ids, *self.rules, status, out, need
        )
        deferred = call_phones(self.native, args)
        return status, out, need, deferred
