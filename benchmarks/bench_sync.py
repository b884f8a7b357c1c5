"""Benchmark a whole Mirror sync against the sandbox, beside `prepare` alone, on this machine.

    uv run python benchmarks/bench_sync.py                  # 2,000,000 rows (emails + phones)
    uv run python benchmarks/bench_sync.py --rows 500000 --shape emails

The sandbox runs as its own process (as `spotify-audience-sync sandbox`), so the upload really
crosses a socket. Each contender runs as a child process; the table shows wall time, input rows
per second and the child's peak RSS (from wait4). `sync` includes everything `prepare` does plus
the audience lookup, the upload URL, the resumable upload and the create call; it runs with
`--no-wait`, because how long Spotify takes to process a file is not our throughput. Each
contender runs ``--repeat`` times (default 3) and the median time is shown; each sync runs
against a fresh sandbox (a repeat to the same audience would be skipped as unchanged, and the
emulator keeps every uploaded file in memory).

Two syncs are timed. ``sync`` replaces the membership of an audience that exists (created
beforehand, untimed, from a small segment): what a scheduled sync does every day, and the
figure to hold against ``prepare``. ``sync, new`` creates the audience: it adds the create call
and the wait that settles a race of creates (``mirror.CREATE_SETTLE``, 1.5 s once in an
audience's life), a fixed cost that no file size changes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_prepare import make_segment, run_child  # noqa: E402


def start_sandbox() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the emulator on a free port; return it and the env that points at it."""
    command = [sys.executable, "-m", "spotify_audience_sync", "sandbox", "--port", "0"]
    command += ["--processing-delay", "0.5"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert process.stdout is not None
    base = process.stdout.readline().split()[-1]
    env: dict[str, str] = {}
    while len(env) < 6:
        name, _, value = process.stdout.readline().strip().removeprefix("export ").partition("=")
        env[name] = value
    request = urllib.request.Request(f"{base}/_sandbox/tokens", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        tokens = json.loads(response.read())
    env["SPOTIFY_ADS_REFRESH_TOKEN"] = tokens["refresh_token"]
    env["_ACCESS_TOKEN"] = tokens["access_token"]  # upload_alone's; the CLI ignores it
    return process, env


UPLOAD_ALONE = r"""
import sys, time
from spotify_audience_sync.spotify.client import AdsClient, StaticToken
from spotify_audience_sync.spotify.upload import upload_file
base, account, token, path = sys.argv[1:]
with AdsClient(base_url=base, ad_account_id=account, tokens=StaticToken(token)) as client:
    url = client.new_upload_url().upload_url
    with open(path, "rb") as f:
        started = time.perf_counter()
        upload_file(url, iter(lambda: f.read(4 << 20), b""))
        print(time.perf_counter() - started)
"""


def upload_alone(path: Path) -> float:
    """Seconds to upload a finished file into a fresh emulator, nothing else: the emulator
    shares this machine's cores, so its receiving rate bounds any sync's."""
    sandbox, env = start_sandbox()
    try:
        base = env["SPOTIFY_ADS_API_BASE_URL"]
        args = [base, env["SPOTIFY_ADS_AD_ACCOUNT_ID"], env["_ACCESS_TOKEN"], str(path)]
        command = [sys.executable, "-c", UPLOAD_ALONE, *args]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return float(done.stdout.strip())
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


def median_run(run: Callable[[], tuple[float, float]], repeat: int) -> tuple[float, float]:
    """The median of ``repeat`` runs by time, with the highest peak RSS seen."""
    runs = sorted(run() for _ in range(max(1, repeat)))
    return runs[len(runs) // 2][0], max(rss for _, rss in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description="sync vs prepare, end to end")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shape", choices=["emails", "mixed"], default="mixed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    args = parser.parse_args()

    src = make_segment(args.rows, phone=args.shape == "mixed")
    cli = [sys.executable, "-m", "spotify_audience_sync"]
    print(f"rows: {args.rows:,} ({args.shape}); cores: {os.cpu_count()}")
    print(f"{'contender':<10} {'seconds':>9} {'rows/s':>12} {'peak RSS':>10}")
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as home:
        out = Path(home) / "out.csv"
        prepare = [*cli, "prepare", str(src), "-o", str(out), "-q"]
        secs, rss = median_run(lambda: run_child(prepare), args.repeat)
        prepare_rate = args.rows / secs
        print(f"{'prepare':<10} {secs:>9.2f} {prepare_rate:>12,.0f} {rss:>8.0f} MB")
        alone = statistics.median(upload_alone(out) for _ in range(max(1, args.repeat)))
        print(
            f"{'upload':<10} {alone:>9.2f} {'':>12} {'':>10}  prepare's file alone into the "
            f"emulator ({out.stat().st_size / 1e6:,.0f} MB): no sync on this machine is faster "
            "than its prepare and what of this it cannot overlap"
        )

    small = make_segment(5_000, phone=args.shape == "mixed")

    def sync(new: bool) -> tuple[float, float]:
        """One sync against a sandbox of its own: the emulator keeps every uploaded file in
        memory, so a shared one would grow and slow down the later runs."""
        sandbox, env = start_sandbox()
        try:
            with tempfile.TemporaryDirectory(prefix="bench-sync-") as home:
                env |= {
                    "SPOTIFY_ADS_TOKEN_STORE": f"{home}/tokens.json",
                    "SPOTIFY_ADS_STATE_DIR": f"{home}/state",
                }
                os.environ.update(env)
                name = ["--audience-name", f"bench {time.time():.0f}", "--no-wait", "-q"]
                if not new:  # the audience exists: this run replaces its membership
                    setup = [*cli, "sync", str(small), *name]
                    subprocess.run(setup, check=True, stdout=subprocess.DEVNULL)
                return run_child([*cli, "sync", str(src), *name])
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)

    for label, new in (("sync", False), ("sync, new", True)):
        secs, rss = median_run(lambda new=new: sync(new), args.repeat)
        rate = args.rows / secs
        share = rate / prepare_rate
        print(f"{label:<10} {secs:>9.2f} {rate:>12,.0f} {rss:>8.0f} MB  {share:.0%} of prepare")


if __name__ == "__main__":
    main()
