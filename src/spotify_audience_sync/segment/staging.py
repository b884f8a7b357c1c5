"""Exact deduplication in bounded memory: hashed records spill to partition files, then dedup.

Deduplicating tens of millions of identifiers in one in-memory hash table costs gigabytes (we
measured 2.7 GB for 10M emails with polars' streaming ``unique``). Instead every record goes to
one of 64 partitions chosen by the top six bits of its lead digest, so identical rows always
meet in the same partition, and each partition is deduplicated on its own. Memory is bounded by
one partition (about 1/64 of the output: 16 MB for 10 million identifiers) and the result is
exact: no probabilistic filter. (256 partitions cost more in file creation and small writes
than they saved.)

Duplicates would break that bound: every copy of one identifier lands in the same partition,
so a file of five million identical rows made one partition of five million records (3 GB to
deduplicate). A partition file that grows past :data:`COMPACT_BYTES` is therefore deduplicated
in place while staging; if it stays large (its records really are distinct), its next
threshold doubles, so a large segment of distinct values pays for this a logarithmic number of
times at most, and a segment under the threshold per partition never does.

Only SHA-256 digests are staged, as fixed-width binary records (see ``encode``): never a raw
identifier. Files are created ``0600`` inside a ``0700`` directory and removed on close, also
after an error.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.identifiers import hashing
from spotify_audience_sync.segment.encode import Records, deduplicate, first_byte

__all__ = ["Stage", "descriptor_error", "partition_payload", "partition_rows"]

T = TypeVar("T")
PARTITIONS = 64
#: A partition file past this size is deduplicated in place while staging (see above): ~500k
#: type-value records, about 60 MB to deduplicate; 64 files of it are ~30M distinct values.
COMPACT_BYTES = 16 * 1024 * 1024


def partition_payload(records: Records, partitions: npt.NDArray[np.uint8]) -> dict[int, Records]:
    """Split a batch's records into contiguous runs per partition: one counting sort, no copies
    beyond the reordering itself (the runs are views, written to disk as they are).

    ``partitions`` holds each record's lead byte (0-255); its top six bits pick the partition.

    Runs on worker threads: it is pure and touches no shared state.
    """
    if len(records) == 0:
        return {}
    keys = partitions >> 2
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=PARTITIONS)
    return _runs(np.take(records, order, axis=0), counts)


def _runs(ordered: Records, counts: npt.NDArray[np.int64]) -> dict[int, Records]:
    """Records already grouped by partition → a view of each partition's run."""
    payload: dict[int, Records] = {}
    start = 0
    for key in np.flatnonzero(counts):
        end = start + int(counts[key])
        payload[int(key)] = ordered[start:end]
        start = end
    return payload


def partition_rows(matrix: Records, accepted: npt.NDArray[np.bool_]) -> dict[int, Records]:
    """:func:`partition_payload` of one type's accepted rows, from its row-aligned digest
    matrix (type-value records). With the C extension: one counting sort and one gather,
    instead of selecting, computing lead bytes and sorting in numpy. Same runs, same order."""
    native = hashing.native_module()
    n = len(matrix)
    if native is None:
        records = matrix[accepted]
        return partition_payload(records, first_byte(records[:, :2]))
    order = np.empty(n, dtype=np.int64)
    counts = np.empty(PARTITIONS, dtype=np.int64)
    kept = native.partition_order(
        np.ascontiguousarray(matrix),
        np.ascontiguousarray(accepted, dtype=np.bool_),
        n,
        order,
        counts,
    )
    return _runs(np.take(matrix, order[:kept], axis=0), counts)


_PREFIX = "spotify-audience-sync-"


def descriptor_error(exc: OSError, what: str) -> ConfigError | None:
    """Out of file descriptors, said as the limit to raise (78), or None for other errors."""
    import errno
    import resource

    if exc.errno not in (errno.EMFILE, errno.ENFILE):
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    scope = "the system's" if exc.errno == errno.ENFILE else f"this process's ({soft})"
    return ConfigError(
        f"{what}: too many open files: {scope} limit of open files (RLIMIT_NOFILE, "
        "`ulimit -n`) is too low for this run; raise it (e.g. ulimit -n 4096) or run fewer "
        "syncs at once"
    )


def remove_stale(root: Path) -> list[Path]:
    """Remove the staging directories of runs that died without cleaning up (killed, OOM).

    A live stage holds an ``flock`` on its directory, which dies with its process, so a
    directory whose lock can be taken is stale, whatever its pid says (pids are per container;
    the lock is the file system's). Only directories a minute old are looked at, so one just
    made by mkdtemp and not yet locked is never taken for stale. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(_PREFIX) and p.is_dir()]
    except OSError:
        return removed
    for directory in candidates:
        try:
            if time.time() - directory.stat().st_ctime < 60:
                continue
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live run holds it
        else:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        finally:
            os.close(fd)
    return removed


class Stage:
    """Partition files of staged rows under a private temporary directory."""

    def __init__(
        self,
        width: int,
        temp_dir: str | Path | None = None,
        *,
        keep_open: bool = True,
        files: int = PARTITIONS,
        partition_of: Callable[[Records], npt.NDArray[np.uint8]] | None = None,
    ) -> None:
        if files < 1 or PARTITIONS % files or (files < PARTITIONS and partition_of is None):
            raise ValueError(f"files must divide {PARTITIONS}; fewer need partition_of")
        self.width = width
        #: Partition files per group: adjacent partitions share a file when fewer (one stage per
        #: audience of many: creating 64 files for each costs more than its smaller sort saves).
        self._merge = PARTITIONS // files
        #: Each record's partition (0-63), to hand ``deduplicated``'s transform one partition at
        #: a time whatever the files: the output and its fingerprint do not depend on them.
        self._partition_of = partition_of
        #: Keep each partition file open between writes (one stage), or open it per write: many
        #: stages at once (one per audience) would otherwise hold 64 descriptors each.
        self.keep_open = keep_open
        root = Path(temp_dir or tempfile.gettempdir())
        remove_stale(root)
        try:
            self._dir = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root))
            # Held for the stage's life: a stage whose lock can be taken belongs to a dead run.
            self._lock = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise descriptor_error(exc, "staging") or ConfigError(
                f"temp dir {root} is not usable ({exc.strerror}); "
                "set --temp-dir / SPOTIFY_ADS_TEMP_DIR"
            ) from exc
        self._files: dict[tuple[int, int], int] = {}
        #: Bytes in each partition file, and the size at which it is next compacted.
        self._sizes: dict[tuple[int, int], int] = {}
        self._limits: dict[tuple[int, int], int] = {}
        self.compactions = 0
        self._deduplicated = False
        self.bytes_staged = 0
        #: Per group: records staged, and two lanes summing each record's first 16 bytes.
        self._multiset: dict[int, npt.NDArray[np.uint64]] = {}

    @property
    def directory(self) -> Path:
        """Where the partitions live (0700)."""
        return self._dir

    def write(self, group: int, payload: dict[int, Records]) -> None:
        """Append one batch's partitions of a group; called from one thread only, in order."""
        for partition, data in payload.items():
            key = partition // self._merge
            fd = self._files.get((group, key))
            if fd is None:
                path = self._dir / f"{key:02x}-{group}"
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                except OSError as exc:
                    raise descriptor_error(exc, "staging") or ConfigError(
                        f"cannot write staged hashes to {self._dir} ({exc.strerror}); "
                        "free space or set --temp-dir / SPOTIFY_ADS_TEMP_DIR"
                    ) from exc
                if self.keep_open:
                    self._files[group, key] = fd
            self._add_to_multiset(group, data)
            try:
                view = np.ascontiguousarray(data).data.cast("B")
                while view:  # os.write may write less than asked (signals, full pipes, quotas)
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                raise ConfigError(
                    f"cannot write staged hashes to {self._dir} ({exc.strerror}); "
                    "free space or set --temp-dir / SPOTIFY_ADS_TEMP_DIR"
                ) from exc
            finally:
                if not self.keep_open:
                    os.close(fd)
            self.bytes_staged += data.nbytes
            size = self._sizes.get((group, key), 0) + data.nbytes
            self._sizes[group, key] = size
            if size > self._limits.get((group, key), COMPACT_BYTES):
                self._compact(group, key)

    def _add_to_multiset(self, group: int, records: Records) -> None:
        """Fold records into the staged multiset's sums (just before they are written, while
        they are in cache: the sums cost next to nothing)."""
        head = records[:, :16]
        if records.shape[1] % 8 or not records.flags.c_contiguous:
            head = np.ascontiguousarray(head)
            lanes = head.view("<u8")
        else:
            lanes = records.view("<u8")[:, :2]
        sums = self._multiset.setdefault(group, np.zeros(3, dtype=np.uint64))
        sums[0] += np.uint64(len(records))
        # Column by column: ten times faster than one sum over axis 0 of the strided pair.
        column_sums = [lanes[:, 0].sum(dtype=np.uint64), lanes[:, 1].sum(dtype=np.uint64)]
        sums[1:] += np.array(column_sums, dtype=np.uint64)  # arrays wrap modulo 2**64, as meant

    def multiset_digest(self) -> str:
        """A digest of every record staged, duplicates included, whatever their order.

        Cheap, and known before deduplication: equal digests mean (all but surely) the same
        staged records, so a sync can tell a segment that is most likely unchanged before it
        starts an upload (see ``sync.mirror``). Never the basis of a skip on its own: that
        takes the exact fingerprint of the distinct rows.
        """
        import hashlib

        digest = hashlib.sha256(self.width.to_bytes(4, "big"))
        for group in sorted(self._multiset):
            digest.update(group.to_bytes(2, "big") + self._multiset[group].astype(">u8").tobytes())
        return digest.hexdigest()[:32]

    def _compact(self, group: int, key: int) -> None:
        """Deduplicate one partition file in place: duplicates never pile up in memory later.

        The file ends as the canonical distinct records :meth:`deduplicated` would make of it
        anyway, so the output does not change. If little was dropped, the next threshold is
        twice what is left, so distinct data is not compacted over and over.
        """
        fd = self._files.pop((group, key), None)
        if fd is not None:
            os.close(fd)
        path = self._dir / f"{key:02x}-{group}"
        try:
            records = deduplicate(np.fromfile(path, dtype=np.uint8).reshape(-1, self.width))
            partial = path.with_name(f".{path.name}")
            out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(out, "wb") as handle:
                handle.write(np.ascontiguousarray(records).data)
            os.replace(partial, path)
        except OSError as exc:
            raise ConfigError(
                f"cannot compact staged hashes in {self._dir} ({exc.strerror}); "
                "free space or set --temp-dir / SPOTIFY_ADS_TEMP_DIR"
            ) from exc
        self.compactions += 1
        self._sizes[group, key] = records.nbytes
        self._limits[group, key] = max(COMPACT_BYTES, 2 * records.nbytes)

    def deduplicated(
        self,
        transform: Callable[[dict[int, Records]], T],
        *,
        workers: int = 2,
        keep: bool = False,
        ahead: int = 1,
    ) -> Iterator[T]:
        """Deduplicate and sort each partition, and yield ``transform`` of it, in order.

        ``transform`` gets the partition's distinct records by group, groups in order.
        Partitions are independent, so ``workers`` threads work on them at once, with at most
        ``workers + ahead`` partitions in memory: a consumer that stops to wait (an upload
        waiting for its chunk's answer) finds that many ready when it comes back. With
        ``keep``, each file is replaced by its distinct records (a later pass then reads less
        and skips the sort); otherwise it is removed once read.
        """
        self._close_files()
        files: dict[str, list[tuple[int, Path]]] = {}
        for path in self._dir.iterdir():
            if not path.name.startswith("."):
                key, group = path.name.split("-")
                files.setdefault(key, []).append((int(group), path))
        already = self._deduplicated

        def distinct(path: Path) -> Records:
            records = np.fromfile(path, dtype=np.uint8).reshape(-1, self.width)
            # Canonical order, so the file is byte-identical whatever the batch size or timing.
            result = records if already else deduplicate(records)
            if keep:
                if not already:
                    partial = path.with_name(f".{path.name}")
                    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        out.write(np.ascontiguousarray(result).data)
                    os.replace(partial, path)
            else:
                path.unlink()
            return result

        def run(key: str) -> list[T]:
            parts = {group: distinct(path) for group, path in sorted(files[key])}
            if self._merge == 1:
                return [transform(parts)]
            assert self._partition_of is not None
            # Records are in canonical (sorted) order, so each partition's are in the order a
            # file of its own would give them.
            ids = {group: self._partition_of(records) for group, records in parts.items()}
            first = int(key, 16) * self._merge
            results = []
            for partition in range(first, first + self._merge):
                subset = {g: r[ids[g] == partition] for g, r in parts.items()}
                subset = {g: r for g, r in subset.items() if len(r)}
                if subset:
                    results.append(transform(subset))
            return results

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pending: deque[Future[list[T]]] = deque()
            try:
                for key in sorted(files):
                    pending.append(pool.submit(run, key))
                    if len(pending) >= workers + max(1, ahead):
                        yield from pending.popleft().result()
                while pending:
                    yield from pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()
        if keep:
            self._deduplicated = True

    def _close_files(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def close(self) -> None:
        """Remove every staged file, whatever state the run ended in (idempotent)."""
        self._close_files()
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
