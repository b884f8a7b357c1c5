"""Benchmark ``prepare`` against a naive row-by-row baseline, in one run, on this machine.

    uv run python benchmarks/bench_prepare.py                 # 2,000,000 rows, both files
    uv run python benchmarks/bench_prepare.py --rows 10000000 --no-baseline
    uv run python benchmarks/bench_prepare.py --rows 5000000 --only duplicates --no-baseline

Generates deterministic messy segments (emails only; emails + phones) under benchmarks/data/,
and a file of one row repeated (``duplicates``: the worst case for the deduplication's memory,
which must stay bounded whatever the duplicate ratio),
then runs each contender as its own child process, one after the other, and reports the child's
peak RSS (from wait4) and two speeds, each with prepare's speed-up over the baseline:

- wall: the whole child process, interpreter start-up and imports included (about 0.7 s for
  prepare, which loads polars and numpy; a few ms for the baseline);
- work: the time each contender measures around its own work, from opening the input to
  the output file closed (prepare's ``seconds`` in its --report; a timer around the loop in
  the baseline). This is the rate a long or repeated run converges to.

``prepare`` runs ``--repeat`` times (default 3) and the median run is shown, with the range of
its work time: on shared 2-core machines one run can be 20% off the next. Before timing, the
environment's modules are compiled to bytecode once, as ``pip install`` does (``uv sync`` does
not unless asked), so neither contender pays for compiling its imports on every start.
For the mixed file it also prints the share of phone values the vectorized rules could not
decide and sent to libphonenumber itself (the report's ``phone.fallback``).

The ``country`` shape is an export with a country column (alpha-2, alpha-3, English names and
calling codes, some blank or unknown) and phones of twelve countries, most in national format:
prepared with ``--country-column Country`` (a region per row), its rows/s is to be compared
with the mixed file's. The ``export`` shape is a realistic US CRM export (customer id, email,
phone in eight US formats, three of them with the leading calling code 1, 15% blank and 15%
junk phones, name, zip).
The baseline is what commercial destinations do: csv + hashlib + phonenumbers, row by row.

A second yardstick needs no baseline: ``polars`` is polars alone parsing the same CSV (every
column as text, all cores, timed around ``read_csv`` in a child process of its own, median of
``--repeat`` runs). ``x parse`` is prepare's work time over that: how many parses of the file
prepare's whole work costs, rules, SHA-256, deduplication and writing included. A ratio holds
on any machine, where rows/s do not.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

NAIVE = r"""
import csv, hashlib, sys, time
import phonenumbers
src, out, timing = sys.argv[1], sys.argv[2], sys.argv[3]
started = time.perf_counter()
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
open(timing, "w").write(repr(time.perf_counter() - started))
"""


POLARS_PARSE = r"""
import sys, time
import polars as pl
src, timing = sys.argv[1], sys.argv[2]
started = time.perf_counter()
frame = pl.read_csv(src, infer_schema=False)
open(timing, "w").write(repr(time.perf_counter() - started))
"""


COUNTRY_FILE = r"""
import sys
import phonenumbers, polars as pl
rows, out = int(sys.argv[1]), sys.argv[2]
regions = ["US", "GB", "DE", "FR", "IT", "ES", "NL", "BR", "MX", "AU", "IN", "JP"]
table = []
for r in regions:
    number = phonenumbers.example_number_for_type(r, phonenumbers.PhoneNumberType.MOBILE)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    name = {"US": "United States", "GB": "UK", "NL": "Netherlands"}.get(r, r.lower())
    spellings = [r, r.lower(), name, "+" + str(number.country_code)]
    table.append((national, str(number.country_code), spellings))
i = pl.int_range(rows, eager=True, dtype=pl.UInt64)
h = i.hash(11)
k = (h % len(regions)).cast(pl.Int64)
national = pl.Series([t[0] for t in table]).gather(k)
# The last four digits vary, so values are as diverse as real ones (some are not valid).
tail = (i * 7919 % 10_000).cast(pl.String).str.zfill(4)
national = national.str.slice(0, national.str.len_chars() - 4) + tail
cc = pl.Series([t[1] for t in table]).gather(k)
spelling = pl.Series([s for t in table for s in t[2]]).gather(k * 4 + (h // 97 % 4).cast(pl.Int64))
style = h // 13 % 20
international = pl.lit("+") + pl.lit(cc) + " " + pl.lit(national).str.replace("^0", "")
phone = pl.select(
    pl.when(pl.lit(style) < 3).then(international)
    .when(pl.lit(style) == 3).then(pl.lit(""))
    .otherwise(pl.lit(national))
).to_series()
country = pl.select(
    pl.when(pl.lit(style) == 4).then(pl.lit("")).when(pl.lit(style) == 5).then(pl.lit("Atlantis"))
    .otherwise(pl.lit(spelling))
).to_series()
email = pl.format("user{}@example.com", pl.lit(i))
frame = {"Email": pl.select(email).to_series(), "phone": phone, "Country": country}
pl.DataFrame(frame).write_csv(out)
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


def make_country_segment(rows: int) -> Path:
    """Generate (once, in a child) the per-row-country export."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"segment-{rows}-country.csv"
    if not path.exists():
        subprocess.run([sys.executable, "-c", COUNTRY_FILE, str(rows), str(path)], check=True)
    return path


EXPORT_FILE = r"""
import sys
import numpy as np, phonenumbers, polars as pl
rows, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(24)
# Area codes in service (valid with a plain exchange), as a CRM's US customers have them.
codes = [c for c in range(200, 1000)
         if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{c}2345678"))]
area = pl.Series(codes).gather(rng.integers(0, len(codes), rows)).cast(pl.String)
exchange = pl.Series(rng.integers(200, 1000, rows)).cast(pl.String)
line = pl.Series(rng.integers(0, 10_000, rows)).cast(pl.String).str.zfill(4)
a, e, n = pl.lit(area), pl.lit(exchange), pl.lit(line)
forms = [
    pl.format("({}) {}-{}", a, e, n), pl.format("{}-{}-{}", a, e, n),
    pl.format("+1 {} {} {}", a, e, n), pl.format("{}{}{}", a, e, n),
    pl.format("{}.{}.{}", a, e, n), pl.format("1-{}-{}-{}", a, e, n),
    pl.format("1{}{}{}", a, e, n), pl.format("1 ({}) {}-{}", a, e, n),
]
style = pl.lit(pl.Series(rng.integers(0, len(forms), rows)))
phone = pl.when(style == 0).then(forms[0])
for k, form in enumerate(forms[1:], 1):
    phone = phone.when(style == k).then(form)
junk = ["555-0147", "123", "n/a", "000-000-0000", "(999) 999-9999", "unknown", "0", "N/A"]
bad = pl.lit(pl.Series(rng.random(rows)))
junk_pick = pl.lit(pl.Series(junk).gather(rng.integers(0, len(junk), rows)))
phone = pl.when(bad < 0.15).then(pl.lit("")).when(bad < 0.30).then(junk_pick).otherwise(
    phone.otherwise(forms[0]))
first = ["james", "mary", "robert", "patricia", "john", "jennifer", "maría", "josé", "zoë"]
last = ["smith", "johnson", "williams", "brown", "garcia", "miller", "davis", "o'neil"]
domains = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"]
pick = lambda words: pl.lit(pl.Series(words).gather(rng.integers(0, len(words), rows)))
email = pl.format("{}.{}{}@{}", pick(first), pick(last), pl.lit(pl.Series(
    rng.integers(1, 9999, rows))), pick(domains))
email = pl.when(pl.lit(pl.Series(rng.random(rows))) < 0.1).then(email.str.to_uppercase()).otherwise(
    email)
frame = pl.select(customer_id=pl.int_range(rows), Email=email, Phone=phone,
                  first_name=pick(first), zip=pl.lit(pl.Series(rng.integers(10_000, 99_999, rows))))
frame.write_csv(out)
"""


def make_export(rows: int) -> Path:
    """Generate (once) a realistic US CRM export: customer id, email, phone in eight US
    formats (three of them starting with the calling code 1), 15% blank and 15% junk phones,
    a name and a zip."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"segment-{rows}-export.csv"
    if not path.exists():
        subprocess.run([sys.executable, "-c", EXPORT_FILE, str(rows), str(path)], check=True)
    return path


def make_duplicates(rows: int) -> Path:
    """Generate (once) a file of one email and phone repeated ``rows`` times."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"segment-{rows}-duplicates.csv"
    if not path.exists():
        line = b"same.person@example.com,+1 212 555 0134\n"
        with path.open("wb") as out:
            out.write(b"email,phone\n")
            for _ in range(rows // 100_000):
                out.write(line * 100_000)
            out.write(line * (rows % 100_000))
    return path


def make_segment(rows: int, phone: bool) -> Path:
    """Generate (once) a deterministic segment file for this size and shape.

    In a child process: a parent holding the generated frame would inflate every later
    child's peak RSS (a forked child starts with the parent's resident pages).
    """
    DATA.mkdir(exist_ok=True)
    path = DATA / f"segment-{rows}-{'mixed' if phone else 'emails'}.csv"
    if not path.exists():
        command = [sys.executable, str(HERE / "segment.py"), "--rows", str(rows), "--seed", "11"]
        command += ["-o", str(path)] + ([] if phone else ["--no-phones"])
        subprocess.run(command, check=True)
    return path


def compile_environment() -> None:
    """Compile installed packages and ours to bytecode (quiet, and quick once done)."""
    for directory in {sysconfig.get_paths()["purelib"], str(HERE.parent / "src")}:
        compileall.compile_dir(directory, quiet=2, workers=0)


def main() -> None:
    parser = argparse.ArgumentParser(description="prepare vs a naive baseline")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="prepare runs per file (median)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow baseline")
    parser.add_argument(
        "--only",
        choices=["emails", "mixed", "country", "export", "duplicates"],
        help="run one file shape",
    )
    args = parser.parse_args()

    compile_environment()
    shapes = [args.only] if args.only else ["emails", "mixed", "country", "export", "duplicates"]
    print(f"rows per file: {args.rows:,}; cores: {os.cpu_count()}; prepare runs: {args.repeat}")
    print(
        f"{'file':<7} {'contender':<9} {'wall s':>7} {'rows/s':>10} {'work s':>7} {'rows/s':>10}"
        f" {'peak RSS':>9}  {'speed-up wall / work':<20} {'x parse':>6}  phones to libphonenumber"
    )
    for shape in shapes:
        if shape == "country":
            src = make_country_segment(args.rows)
        elif shape == "duplicates":
            src = make_duplicates(args.rows)
        elif shape == "export":
            src = make_export(args.rows)
        else:
            src = make_segment(args.rows, phone=shape == "mixed")
        out, side = DATA / "out.csv", DATA / "out.json"
        base: tuple[float, float] | None = None
        if not args.no_baseline and shape not in ("country", "export"):
            wall, rss = run_child([sys.executable, "-c", NAIVE, str(src), str(out), str(side)])
            work = float(side.read_text())
            base = (args.rows / wall, args.rows / work)
            print(
                f"{shape:<7} {'naive':<9} {wall:>7.2f} {base[0]:>10,.0f} {work:>7.2f}"
                f" {base[1]:>10,.0f} {rss:>6.0f} MB"
            )
        parses = []
        for _ in range(max(1, args.repeat)):
            run_child([sys.executable, "-c", POLARS_PARSE, str(src), str(side)])
            parses.append(float(side.read_text()))
        parse = statistics.median(parses)
        print(f"{shape:<7} {'polars':<9} {'':>7} {'':>10} {parse:>7.2f} {args.rows / parse:>10,.0f}"
              "  (read_csv alone: the parse every reader pays)")  # fmt: skip
        cli = [sys.executable, "-m", "spotify_audience_sync", "prepare", str(src), "-o", str(out)]
        cli += ["--quiet", "--report", str(side)]
        if shape == "country":
            cli += ["--country-column", "Country"]
        runs = []
        for _ in range(max(1, args.repeat)):
            wall, rss = run_child(cli)
            runs.append((json.loads(side.read_text())["seconds"], wall, rss))
            out.unlink(missing_ok=True)
        report = json.loads(side.read_text())
        work, wall, _ = sorted(runs)[len(runs) // 2]
        rss = max(r for _, _, r in runs)
        rates = (args.rows / wall, args.rows / work)
        ratio = f"{rates[0] / base[0]:.1f}x / {rates[1] / base[1]:.1f}x" if base else "-"
        fallback = "-"
        if phone := report["identifiers"].get("phone"):
            present = phone["accepted"] + phone["rejected_total"] - phone["rejected"]["empty"]
            fallback = f"{phone['fallback'] / max(1, present):.2%} of values"
            if "row_country" in phone:
                fallback += f"; {phone['row_country']:,} by their row's country"
        print(
            f"{shape:<7} {'prepare':<9} {wall:>7.2f} {rates[0]:>10,.0f} {work:>7.2f}"
            f" {rates[1]:>10,.0f} {rss:>6.0f} MB  {ratio:<20} {work / parse:>6.1f}"
            f"  {fallback}"
        )
        if len(runs) > 1:
            works = [w for w, _, _ in runs]
            print(
                f"{'':<7} {'':<9} work s over {len(runs)} runs: min {min(works):.2f},"
                f" median {statistics.median(works):.2f}, max {max(works):.2f}"
            )
        side.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
