"""Peak memory and time of a suppression list: ``prepare --exclude`` with a 10M-entry list.

    uv run python benchmarks/bench_suppression.py                       # 10,000,000 entries
    uv run python benchmarks/bench_suppression.py --entries 1000000 --rows 200000

Writes a list of ``--entries`` distinct emails and a segment of ``--rows`` emails, half of
them on the list, under a temporary directory; runs ``prepare --exclude`` as a child process
and prints its peak RSS (from wait4) and wall time, with the same run without ``--exclude``
for comparison. The list is spilled to disk by partition, so its size should barely show in
the peak (see ``segment/suppression.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _write(path: Path, header: str, start: int, count: int, step: int = 1) -> None:
    with path.open("w") as out:
        out.write(header + "\n")
        block = 100_000
        for first in range(start, start + count * step, block * step):
            last = min(first + block * step, start + count * step)
            out.write("".join(f"person{i}@example.com\n" for i in range(first, last, step)))


def _run(args: list[str]) -> tuple[float, int, dict[str, object]]:
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "spotify_audience_sync", "prepare", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(child.stderr.read().decode() if child.stderr else "prepare failed")
    report = json.loads(Path(args[args.index("--report") + 1]).read_text())
    return seconds, usage.ru_maxrss // 1024, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-suppression-") as tmp:
        folder = Path(tmp)
        opt_out, segment = folder / "opt_out.csv", folder / "segment.csv"
        _write(opt_out, "email", 0, options.entries)
        # Every other row is on the list: rows 0, 2, 4... are; odd ones past the list are not.
        _write(segment, "email", 0, options.rows // 2, step=2)
        with segment.open("a") as out:
            start = options.entries + 1
            out.write("".join(f"person{start + i}@example.com\n" for i in range(options.rows // 2)))
        base = ["-o", str(folder / "out.csv"), "--report", str(folder / "r.json"), "-q"]
        plain = _run([str(segment), *base])
        excluded = _run([str(segment), "--exclude", str(opt_out), *base])
    for label, (seconds, peak, report) in (("without", plain), ("--exclude", excluded)):
        email = report["identifiers"]["email"]  # type: ignore[index]
        print(
            f"{label:>10}: {seconds:6.1f} s wall, peak RSS {peak:,} MiB, "
            f"written {email['written']:,}, suppressed {email.get('suppressed', 0):,}"
        )
    print(f"list: {options.entries:,} entries; segment: {options.rows:,} rows")


if __name__ == "__main__":
    main()
