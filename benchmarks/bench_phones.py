"""Benchmark: ``normalize_phones`` (vectorized path + fallback) against libphonenumber per value.

    uv run --frozen python benchmarks/bench_phones.py [--rows 1000000] [--reference-rows 50000]

Builds a deterministic messy phone column (default region US): national and international
formats over ten regions, IDD prefixes, trunk zeros, punctuation, full-width digits, invalid and
random numbers, 0.5% extensions and 0.5% vanity numbers (most of them distinct, so the exact
path has real work), ~20% duplicates. Each path runs in its own child process so that peak RSS
is its own. The vectorized path is timed in steady state (warmed on a first batch, best of five
runs; all five are printed, since the first runs also pay for fresh memory). The reference (one
``phonenumbers.parse`` per distinct value) runs on a subsample of ``--reference-rows`` rows;
its values/s is measured there. Nothing here prints a phone value.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from typing import Any

import polars as pl

SEED = 6
REGIONS = ("US", "US", "US", "US", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "MX", "CA")
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def _bases() -> list[tuple[int, str, str]]:
    """(calling code, national prefix, national number) from libphonenumber's examples."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    bases = []
    for region in REGIONS:
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            nsn = phonenumbers.national_significant_number(number)
            bases.append((number.country_code, prefix, nsn))
    return bases


def _dashed(digits: str, rng: random.Random) -> str:
    sep = rng.choice((" ", "-", ".", ""))
    return sep.join(digits[i : i + 3] for i in range(0, len(digits), 3))


def _one(rng: random.Random, bases: list[tuple[int, str, str]]) -> str:
    code, prefix, nsn = rng.choice(bases)
    tail = "".join(str(rng.randrange(10)) for _ in range(4))
    nsn = nsn[:-4] + tail
    roll = rng.random()
    if roll < 0.30:
        return f"+{code} {_dashed(nsn, rng)}"
    if roll < 0.55:
        return (prefix if code != 1 else rng.choice(("", "1 "))) + _dashed(nsn, rng)
    if roll < 0.62:
        return f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
    if roll < 0.70:
        return f"011 {code} {nsn}"
    if roll < 0.75:
        return f"+{code}{nsn}".translate(FULLWIDTH) if rng.random() < 0.2 else f"{code}{nsn}"
    if roll < 0.85:
        return f"  +{code} ({prefix}) {nsn} "
    if roll < 0.95:
        return "".join(str(rng.randrange(10)) for _ in range(rng.randrange(3, 16)))
    if roll < 0.99:
        return f"+{code}{nsn[: rng.randrange(1, len(nsn))]}"
    roll = rng.random()
    if roll < 0.5:
        return f"+{code} {nsn} ext. {tail}"  # decided by the fast path
    if roll < 0.8:  # vanity numbers: libphonenumber decides these
        return "1-800-" + "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWXY") for _ in range(7))
    return "1-800-FLOWERS"


def build_column(rows: int) -> pl.Series:
    """A deterministic messy phone column with ~20% duplicate values."""
    rng = random.Random(SEED)
    bases = _bases()
    distinct = [_one(rng, bases) for _ in range(int(rows * 0.8))]
    values = distinct + [rng.choice(distinct) for _ in range(rows - len(distinct))]
    rng.shuffle(values)
    return pl.Series("phone", values, dtype=pl.String)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(path: str, rows: int, reference_rows: int) -> None:
    """Run one path in this process and print its measurements as JSON."""
    from spotify_audience_sync.identifiers.phones.exact import normalize_phones_exact
    from spotify_audience_sync.identifiers.phones.normalize import normalize_phones_with_stats

    column = build_column(rows)
    if path == "reference":
        column = column.head(reference_rows)
    before = _peak_rss_mb()
    runs = 1
    if path == "fast":
        # Steady state, as in a pipeline that normalizes batch after batch: metadata tables
        # and compiled regexes warmed on a first batch, then the best of five full runs.
        normalize_phones_with_stats(column.head(50_000))
        runs = 5
    timings, cpu_timings = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        if path == "fast":
            frame, stats = normalize_phones_with_stats(column)
            share = stats.fallback_share
            fallback_values = stats.fallback_values
        else:
            frame = normalize_phones_exact(column)
            share, fallback_values = 1.0, -1
        timings.append(time.perf_counter() - start)
        cpu_timings.append(time.process_time() - cpu_start)
    seconds = min(timings)
    kept = frame["e164"].is_not_null().sum()
    report = {
        "rows": len(column),
        "seconds": seconds,
        "all_seconds": timings,
        "cpu_seconds": min(cpu_timings),
        "values_per_s": len(column) / seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": before,
        "fallback_share": share,
        "fallback_values": fallback_values,
        "kept": int(kept),
    }
    print(json.dumps(report))


def _run(path: str, rows: int, reference_rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", path]
    cmd += ["--rows", str(rows), "--reference-rows", str(reference_rows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--child", choices=("fast", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.reference_rows)
        return
    fast = _run("fast", args.rows, args.reference_rows)
    ref = _run("reference", args.rows, args.reference_rows)
    from spotify_audience_sync.identifiers.phones.metadata import PHONENUMBERS_VERSION

    print(
        f"phone column: {args.rows:,} rows, default region US, "
        f"polars {pl.__version__}, phonenumbers {PHONENUMBERS_VERSION}"
    )
    print(
        f"vectorized + fallback: {fast['values_per_s']:>12,.0f} values/s "
        f"(best of {', '.join(f'{t:.2f}' for t in fast['all_seconds'])} s), "
        f"peak RSS {fast['peak_rss_mb']:,.0f} MB, "
        f"fallback {fast['fallback_share']:.2%} of rows "
        f"({fast['fallback_values']:,.0f} distinct values), kept {fast['kept']:,.0f}"
    )
    print(
        f"  CPU time {fast['cpu_seconds']:.2f} s for {fast['rows']:,} values "
        f"({fast['rows'] / fast['cpu_seconds']:,.0f} values per CPU-second; wall time on a "
        f"shared machine varies with the other load)"
    )
    print(
        f"reference (phonenumbers, {ref['rows']:,.0f}-row subsample): "
        f"{ref['values_per_s']:>12,.0f} values/s ({ref['seconds']:.2f} s), "
        f"peak RSS {ref['peak_rss_mb']:,.0f} MB"
    )
    print(f"speedup: {fast['values_per_s'] / ref['values_per_s']:.1f}x")


if __name__ == "__main__":
    main()
