"""Suppression lists: identifiers that must never be uploaded, removed before a byte is sent.

An opt-out must take effect on the next sync, and a Mirror sync is exactly where it does: what
is suppressed is absent from the file, so Spotify removes it from the audience.

A list is read like a segment (any supported format, raw or SHA-256 values, the same rules and
hashing; a ``type,value`` file such as an earlier upload is read by its type column), and its
digests are spilled to disk partitioned by their first byte, exactly as the segment's stage
partitions its own. Subtraction then runs partition by partition, when the segment's distinct
records are at hand: only one partition of the list is in memory at a time (1/256 of it), so a
10-million-entry list costs a few MB, not the 640 MB it would as one set. Values are never
logged; only counts leave this module.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.segment.columns import folded, resolve_column_lists
from spotify_audience_sync.segment.columnsets import hash_columns
from spotify_audience_sync.segment.encode import Records, first_byte
from spotify_audience_sync.segment.sources import Source

__all__ = ["Suppression", "build_suppression"]

_ORDER = list(IdentifierType)
_WIDTH = 64


def _type_of(name: str) -> IdentifierType | None:
    """A ``type`` cell (``EMAIL_ID_SHA256``, ``email``, ``PHONE_NUMBER_SHA256``) as a type."""
    key = folded(name)
    if "email" in key or key == "mail":
        return IdentifierType.EMAIL
    if "phone" in key or key in ("mobile", "msisdn"):
        return IdentifierType.PHONE
    if "device" in key or key in ("maid", "idfa", "gaid", "aaid"):
        return IdentifierType.DEVICE_ID
    return None


class Suppression:
    """Digests to remove, per identifier type, spilled to disk by partition (first byte)."""

    def __init__(self, temp_dir: str | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="spotify-ads-suppress-", dir=temp_dir))
        #: Digests read per type (before deduplication), for the report.
        self.entries: dict[IdentifierType, int] = dict.fromkeys(IdentifierType, 0)

    def add(self, kind: IdentifierType, records: Records) -> None:
        """Spill digests (``(n, 64)`` hex records) of one type, by partition."""
        if not len(records):
            return
        self.entries[kind] += len(records)
        parts = first_byte(records[:, :2])
        order = np.argsort(parts, kind="stable")
        records, parts = records[order], parts[order]
        bounds = np.flatnonzero(np.diff(parts)) + 1
        group = _ORDER.index(kind)
        for run in np.split(np.arange(len(parts)), bounds):
            path = self._dir / f"{group}-{int(parts[run[0]]):03d}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as out:
                out.write(np.ascontiguousarray(records[run[0] : run[-1] + 1]).data)

    def _members(self, group: int, partition: int) -> Records:
        path = self._dir / f"{group}-{partition:03d}"
        if not path.exists():
            return np.zeros((0, _WIDTH), dtype=np.uint8)
        return np.fromfile(path, dtype=np.uint8).reshape(-1, _WIDTH)

    def subtract(self, group: int, records: Records) -> tuple[Records, int]:
        """``records`` of type group ``group`` without the suppressed ones, and how many went."""
        if not len(records) or group >= len(_ORDER):
            return records, 0
        parts = first_byte(records[:, :2])
        drop = np.zeros(len(records), dtype=np.bool_)
        for partition in np.unique(parts).tolist():
            members = self._members(group, int(partition))
            if len(members):
                here = np.flatnonzero(parts == partition)
                drop[here] = _isin(np.ascontiguousarray(records[here]), members)
        removed = int(drop.sum())
        return (records[~drop] if removed else records), removed

    def close(self) -> None:
        """Remove the spilled digests."""
        shutil.rmtree(self._dir, ignore_errors=True)


def _keys(records: Records) -> npt.NDArray[np.uint64]:
    """A u64 per record from its first 16 hex digits (64 bits of the digest): sorting these
    is ~15x faster than sorting 64-byte strings. Equal keys are then compared in full."""
    words = np.ascontiguousarray(records).view(np.uint64).reshape(len(records), _WIDTH // 8)
    second = words[:, 1]
    rotated = (second << np.uint64(1)) | (second >> np.uint64(63))
    result: npt.NDArray[np.uint64] = words[:, 0] ^ rotated
    return result


def _isin(records: Records, members: Records) -> npt.NDArray[np.bool_]:
    """Which ``records`` are among ``members``: exact, by sorted keys and a full compare."""
    member_keys = _keys(members)
    order = np.argsort(member_keys, kind="stable")
    member_keys = member_keys[order]
    keys = _keys(records)
    position = np.minimum(np.searchsorted(member_keys, keys), len(member_keys) - 1)
    candidates = np.flatnonzero(member_keys[position] == keys)
    found = np.zeros(len(records), dtype=np.bool_)
    if not len(candidates):
        return found
    equal = (members[order[position[candidates]]] == records[candidates]).all(axis=1)
    found[candidates[equal]] = True
    unsure = candidates[~equal]  # two members share a key (about 1 in 2**64): compare fully
    if len(unsure):
        width = f"S{_WIDTH}"
        strings = np.ascontiguousarray(records[unsure]).view(width).ravel()
        found[unsure] = np.isin(strings, np.ascontiguousarray(members).view(width).ravel())
    return found


Digests = list[tuple[IdentifierType, Records]]


def _type_value_digests(batch: pl.DataFrame, options: NormalizeOptions) -> Digests:
    """A ``type,value`` batch: each type's values hashed as that type."""
    types, values = batch.columns
    found: Digests = []
    for name in batch[types].drop_nulls().unique(maintain_order=True).to_list():
        kind = _type_of(name)
        if kind is None:
            raise InputError(f"exclusion list: unknown identifier type {name!r} in column 'type'")
        rows = batch.filter(pl.col(types) == name).select(pl.col(values).alias("v"))
        found.extend(_column_digests(rows, {kind: ["v"]}, options))
    return found


def _column_digests(
    batch: pl.DataFrame, lists: dict[IdentifierType, list[str]], options: NormalizeOptions
) -> Digests:
    hashed = hash_columns(batch, lists, options)
    return [
        (kind, digests.matrix[digests.accepted])
        for kind, columns in hashed.hashes.items()
        for digests in columns
    ]


def _read(
    source: Source, options: NormalizeOptions
) -> tuple[list[str], Callable[[pl.DataFrame], Digests]]:
    """The columns to read from an exclusion source, and what turns a batch into digests."""
    if [folded(c) for c in source.columns] == ["type", "value"]:
        return source.columns, lambda batch: _type_value_digests(batch, options)
    lists = resolve_column_lists(source.name, source.columns, {})
    wanted = list(dict.fromkeys(c for names in lists.values() for c in names))
    return wanted, lambda batch: _column_digests(batch, lists, options)


def _work(parse: Callable[[], pl.DataFrame], digests: Callable[[pl.DataFrame], Digests]) -> Digests:
    return digests(parse())


def build_suppression(
    sources: Iterable[Source],
    options: NormalizeOptions,
    temp_dir: str | None = None,
    workers: int = 2,
) -> Suppression:
    """Read every exclusion source into one :class:`Suppression` (the caller closes it).

    Batches are parsed and hashed on ``workers`` threads (polars and the hashing release the
    GIL) and spilled in input order on this one, with at most ``workers + 1`` in flight.
    """
    suppression = Suppression(temp_dir)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for source in sources:
                wanted, digests = _read(source, options)
                in_flight: deque[Future[Digests]] = deque()
                for parse in source.deferred_batches(wanted):
                    in_flight.append(pool.submit(_work, parse, digests))
                    while len(in_flight) > workers:
                        for kind, records in in_flight.popleft().result():
                            suppression.add(kind, records)
                while in_flight:
                    for kind, records in in_flight.popleft().result():
                        suppression.add(kind, records)
    except BaseException:
        suppression.close()
        raise
    return suppression
