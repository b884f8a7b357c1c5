"""Which PostgreSQL driver streams a query's rows fastest and in the least memory, on this machine.

    uv run python benchmarks/bench_postgres_drivers.py                 # 4,000,000 rows
    uv run python benchmarks/bench_postgres_drivers.py --rows 500000 --url postgresql://...

The tool reads a query as text columns in bounded batches of polars String frames (what
``segment/warehouse`` hands the pipeline). Each candidate does exactly that to the same table,
as a child process (the table shows its wall time, rows/s and peak RSS from wait4):

* ``adbc``: ADBC's PostgreSQL driver, Arrow record batches (not a dependency any more:
  ``uv pip install adbc-driver-postgresql`` to measure it again).
* ``psycopg-copy``: psycopg 3, ``COPY (query) TO STDOUT (FORMAT csv)``, rows joined into
  blocks and parsed by polars' CSV reader.
* ``psycopg-cursor``: psycopg 3, a server-side (named) cursor, ``fetchmany`` into a frame.

The table lives in a schema of its own (created, filled by ``generate_series``, dropped).
Candidates whose driver is not installed are listed as such.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid

BATCH = 100_000
QUERY = "SELECT CAST(email AS text) AS email, CAST(phone AS text) AS phone FROM {table}"


def fill(url: str, rows: int) -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.people AS SELECT"
            " 'person' || i || '@example.com' AS email,"
            " '+1555' || lpad((i % 10000000)::text, 7, '0') AS phone"
            f" FROM generate_series(1, {rows}) AS i"
        )
    return schema


def drop(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def read_adbc(url: str, query: str) -> int:
    import polars as pl
    from adbc_driver_postgresql import dbapi

    rows = 0
    with dbapi.connect(url) as conn, conn.cursor() as cursor:
        cursor.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH * 64)}
        )
        cursor.execute(query)
        reader = cursor.fetch_record_batch()
        for batch in reader:
            frame = pl.from_arrow(batch)
            rows += frame.height
    return rows


def read_psycopg_copy(url: str, query: str) -> int:
    import polars as pl
    import psycopg

    rows = 0
    schema = {"email": pl.String, "phone": pl.String}
    copy_sql = f"COPY ({query}) TO STDOUT (FORMAT csv)"
    with psycopg.connect(url) as conn, conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
        block: list[bytes] = []
        for row in copy:  # one CopyData message: one whole row
            block.append(bytes(row))
            if len(block) == BATCH:
                frame = pl.read_csv(io.BytesIO(b"".join(block)), has_header=False, schema=schema)
                rows += frame.height
                block.clear()
        if block:
            frame = pl.read_csv(io.BytesIO(b"".join(block)), has_header=False, schema=schema)
            rows += frame.height
    return rows


def read_psycopg_cursor(url: str, query: str) -> int:
    import polars as pl
    import psycopg

    rows = 0
    with psycopg.connect(url) as conn, conn.cursor(name="bench") as cursor:
        cursor.itersize = BATCH
        cursor.execute(query)
        while chunk := cursor.fetchmany(BATCH):
            frame = pl.DataFrame(chunk, schema=["email", "phone"], orient="row")
            rows += frame.height
    return rows


CANDIDATES = {
    "adbc": read_adbc,
    "psycopg-copy": read_psycopg_copy,
    "psycopg-cursor": read_psycopg_cursor,
}


def child(name: str, url: str, query: str) -> None:
    start = time.perf_counter()
    rows = CANDIDATES[name](url, query)
    print(f"{rows} {time.perf_counter() - start:.3f}")


def run(name: str, url: str, query: str) -> tuple[int, float, float] | None:
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", name, "--url", url, "--query", query],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        if "ModuleNotFoundError" in err:
            return None
        raise SystemExit(f"{name} failed:\n{err}")
    rows, seconds = out.split()
    return int(rows), float(seconds), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--query")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.query)
        return
    schema = fill(args.url, args.rows)
    try:
        query = QUERY.format(table=f"{schema}.people")
        print(f"{args.rows:,} rows, 2 text columns, batches of {BATCH:,}, median of {args.repeat}")
        print(f"{'candidate':<16} {'seconds':>8} {'rows/s':>12} {'peak RSS MB':>12}")
        for name in CANDIDATES:
            results = [run(name, args.url, query) for _ in range(args.repeat)]
            if results[0] is None:
                print(f"{name:<16} (not installed)")
                continue
            done = sorted((r for r in results if r), key=lambda r: r[1])
            rows, seconds, _ = done[len(done) // 2]
            assert rows == args.rows, (name, rows)
            peak = max(r[2] for r in done)
            print(f"{name:<16} {seconds:>8.2f} {rows / seconds:>12,.0f} {peak:>12.0f}")
    finally:
        drop(args.url, schema)


if __name__ == "__main__":
    main()
