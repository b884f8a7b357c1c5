"""Benchmark ``prepare`` against a naive row-by-row baseline, in one run, on this machine.

    uv run python benchmarks/bench_prepare.py                 # 2,000,000 rows, both files
    uv run python benchmarks/bench_prepare.py --rows 10000000 --no-baseline

Generates deterministic messy segments (emails only; emails + phones) under benchmarks/data/,
then runs each contender as its own child process, one after the other, and reports wall time,
rows/s and the child's peak RSS (from wait4), plus prepare's speed-up over the baseline.
The baseline is what commercial destinations do: csv + hashlib + phonenumbers, row by row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

NAIVE = r"""
import csv, hashlib, sys
import phonenumbers
src, out = sys.argv[1], sys.argv[2]
seen = set()
with open(src, newline="", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
    w.write("type,value\n")
    reader = csv.DictReader(f)
    for row in reader:
        email = (row.get("Email") or "").strip().lower()
        if email and email.count("@") == 1 and "." in email.split("@")[1]:
            key = ("EMAIL_ID_SHA256", hashlib.sha256(email.encode()).hexdigest())
            if key not in seen:
                seen.add(key)
                w.write("%s,%s\n" % key)
        phone = (row.get("phone") or "").strip()
        if phone:
            try:
                n = phonenumbers.parse(phone, "US")
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(n):
                e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
                key = ("PHONE_NUMBER_SHA256", hashlib.sha256(e164.encode()).hexdigest())
                if key not in seen:
                    seen.add(key)
                    w.write("%s,%s\n" % key)
"""


def run_child(argv: list[str]) -> tuple[float, float]:
    """Run a child to completion; return (seconds, peak RSS in MiB) of that child alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark child failed: {' '.join(argv[:3])} …")
    return seconds, usage.ru_maxrss / 1024


def make_segment(rows: int, phones: bool) -> Path:
    """Generate (once) a deterministic segment file for this size and shape.

    In a child process: a parent holding the generated frame would inflate every later
    child's peak RSS (a forked child starts with the parent's resident pages).
    """
    DATA.mkdir(exist_ok=True)
    path = DATA / f"segment-{rows}-{'mixed' if phones else 'emails'}.csv"
    if not path.exists():
        command = [sys.executable, str(HERE / "segment.py"), "--rows", str(rows), "--seed", "11"]
        command += ["-o", str(path)] + ([] if phones else ["--no-phones"])
        subprocess.run(command, check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="prepare vs a naive baseline")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow baseline")
    parser.add_argument("--only", choices=["emails", "mixed"], help="run one file shape")
    args = parser.parse_args()

    shapes = [args.only] if args.only else ["emails", "mixed"]
    print(f"rows per file: {args.rows:,}; cores: {os.cpu_count()}")
    print(f"{'file':<8} {'contender':<10} {'seconds':>9} {'rows/s':>12} {'peak RSS':>10}  ratio")
    for shape in shapes:
        src = make_segment(args.rows, phones=shape == "mixed")
        out = DATA / "out.csv"
        baseline_rate = None
        if not args.no_baseline:
            secs, rss = run_child([sys.executable, "-c", NAIVE, str(src), str(out)])
            baseline_rate = args.rows / secs
            print(f"{shape:<8} {'naive':<10} {secs:>9.2f} {baseline_rate:>12,.0f} {rss:>8.0f} MB")
        cli = [sys.executable, "-m", "spotify_audience_sync", "prepare", str(src), "-o", str(out)]
        secs, rss = run_child([*cli, "--quiet"])
        rate = args.rows / secs
        ratio = f"{rate / baseline_rate:.1f}x" if baseline_rate else "-"
        print(f"{shape:<8} {'prepare':<10} {secs:>9.2f} {rate:>12,.0f} {rss:>8.0f} MB  {ratio}")
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
