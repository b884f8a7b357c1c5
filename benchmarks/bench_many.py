"""Benchmark many audiences from one table: one `--audience-column` run beside one run each.

    uv run python benchmarks/bench_many.py                       # 4,000,000 rows, 20 segments
    uv run python benchmarks/bench_many.py --rows 400000 --segments 5

A PostgreSQL table (``--database-url``, default the test database on 127.0.0.1) of emails and
phones with a ``segment`` column is made once and kept (``bench_many_<rows>_<segments>``).
Both contenders sync every segment to the sandbox (its own process, so uploads cross a
socket) with ``--no-wait``: how long Spotify processes a file is not our throughput.

* many: one `sync --query 'SELECT email, phone, segment …' --audience-column segment` run;
* separate: one `sync --query '… WHERE segment = …'` run per segment, one after the other.

Printed: each contender's wall time and the peak RSS of its largest child process (wait4),
and the ratio. Goals: the single run at least 3x faster, its peak RSS under 500 MB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prepare import run_child  # noqa: E402
from bench_sync import start_sandbox  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    from adbc_driver_postgresql import dbapi  # type: ignore[import-untyped]

    rows: list[tuple[object, ...]] = []
    with dbapi.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            if cursor.description:
                rows = cursor.fetchall()
    return rows


def make_table(url: str, rows: int, segments: int) -> str:
    """The table, made once: ``rows`` people spread evenly over ``segments`` segments."""
    name = f"bench_many_{rows}_{segments}"
    found = _execute(url, f"SELECT count(*) FROM pg_tables WHERE tablename = '{name}'")
    if found and found[0][0]:
        return name
    print(f"creating {name} ({rows:,} rows) …", file=sys.stderr)
    _execute(
        url,
        f"""CREATE TABLE {name} AS
        SELECT 'person' || i || '@example.com' AS email,
          '+1 212 ' || (2000000 + i % 7000000)::text AS phone,
          'seg' || lpad((i % {segments})::text, 2, '0') AS segment
        FROM generate_series(1, {rows}) AS i""",
        f"CREATE INDEX ON {name} (segment)",
        f"ANALYZE {name}",
    )
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument(
        "--database-url", default=os.environ.get("SAS_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args()
    table = make_table(args.database_url, args.rows, args.segments)
    cli = [sys.executable, "-m", "spotify_audience_sync"]
    segments = [f"seg{i:02d}" for i in range(args.segments)]

    def with_sandbox(run: object) -> tuple[float, float]:
        sandbox, env = start_sandbox()
        try:
            with tempfile.TemporaryDirectory(prefix="bench-many-") as home:
                env |= {
                    "SPOTIFY_ADS_TOKEN_STORE": f"{home}/tokens.json",
                    "SPOTIFY_ADS_STATE_DIR": f"{home}/state",
                    "SPOTIFY_ADS_DATABASE_URL": args.database_url,
                }
                os.environ.update(env)
                return run()  # type: ignore[operator,no-any-return]
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)

    stamp = f"{time.time():.0f}"

    def many() -> tuple[float, float]:
        query = f"SELECT email, phone, segment FROM {table}"
        return run_child(
            [
                *cli,
                "sync",
                "--query",
                query,
                "--audience-column",
                "segment",
                "--audience-name-template",
                f"bench {stamp} {{value}}",
                "--no-wait",
                "-q",
            ]
        )

    def separate() -> tuple[float, float]:
        total, peak = 0.0, 0.0
        for segment in segments:
            query = f"SELECT email, phone FROM {table} WHERE segment = '{segment}'"
            name = f"bench {stamp} one {segment}"
            seconds, rss = run_child(
                [*cli, "sync", "--query", query, "--audience-name", name, "--no-wait", "-q"]
            )
            total, peak = total + seconds, max(peak, rss)
        return total, peak

    print(f"{args.rows:,} rows, {args.segments} segments, table {table}")
    print(f"{'contender':<28} {'seconds':>9} {'peak RSS':>10}")
    many_s, many_rss = with_sandbox(many)
    print(f"{'one --audience-column run':<28} {many_s:>9.1f} {many_rss:>8.0f} MB")
    sep_s, sep_rss = with_sandbox(separate)
    print(f"{f'{args.segments} separate runs':<28} {sep_s:>9.1f} {sep_rss:>8.0f} MB")
    ratio = sep_s / many_s
    print(f"ratio: the single run is {ratio:.1f}x faster (goal: 3x); peak RSS goal: < 500 MB")


if __name__ == "__main__":
    main()
