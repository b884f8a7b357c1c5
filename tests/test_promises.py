"""The README's and docs/container.md's promises, attacked one by one, as a hostile tester would.

Each section quotes a promise and tries to break it with careless or hostile input: raw
identifiers where names are made, an upload URL on a foreign host, outputs that are the input
or a device, a file of one row repeated, a low descriptor limit, every exit code. A promise
that stops holding fails here, whatever module broke it. (Issue 20; the unit tests of each
fix live beside their modules.)
"""

from __future__ import annotations

import os
import re
import resource
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import count_leaks, raw_identifiers, run_with_peak_rss
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import EXIT_TABLE
from spotify_audience_sync.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "segment.csv"
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTAINER = (ROOT / "docs" / "container.md").read_text(encoding="utf-8")


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; the exit code and everything it printed (stdout + stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


# --- "Raw identifiers never leave the process: not in logs, errors, reports or temporary files"
def test_a_sync_prints_reports_and_stages_no_raw_identifier(env: Sandbox, tmp_path: Path) -> None:
    report, rejects, stage = tmp_path / "r.json", tmp_path / "rejects.csv", tmp_path / "stage"
    stage.mkdir()
    code, printed = cli(
        "sync", str(FIXTURE), "-vv", "--audience-name", "promise", "--log-format", "json",
        "--report", str(report), "--rejects", str(rejects), "--temp-dir", str(stage),
    )  # fmt: skip
    assert code == 0, printed[-2000:]
    raw = raw_identifiers(FIXTURE)
    for text in (printed, report.read_text(), rejects.read_text()):
        assert count_leaks(text, raw) == 0
    assert list(stage.iterdir()) == [], "staged files outlived the run"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["sync", "--audience-column", "Email", "--audience-name-template", "X {value}"],
            id="sync-email-column",
        ),
        pytest.param(["prepare", "--audience-column", "phone", "-o", "out_{value}.csv"], id="prep"),
    ],
)
def test_an_identifier_column_never_names_audiences_or_files(
    env: Sandbox, tmp_path: Path, args: list[str]
) -> None:
    code, printed = cli(args[0], str(FIXTURE), *args[1:], "--log-format", "json")
    assert code == 65, printed[-2000:]
    assert "identifier column" in printed
    assert count_leaks(printed, raw_identifiers(FIXTURE)) == 0
    assert not list(tmp_path.glob("out_*")), "a file was named after a person"
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


# --- "Tokens and signed URLs are never printed whole" (and a foreign host gets nothing) -------
def test_a_foreign_upload_host_gets_no_byte_and_no_secret_is_printed(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    slot = env.audiences._slot
    signature: list[str] = []

    def foreign(account: str, target: str | None, base_url: str) -> dict[str, str]:
        answer = slot(account, target, base_url)
        signature.append(answer["upload_url"].rsplit("=", 1)[1])
        answer["upload_url"] = answer["upload_url"].replace(base_url, "http://127.0.0.2:9")
        return answer

    monkeypatch.setattr(env.audiences, "_slot", foreign)
    code, printed = cli("sync", str(FIXTURE), "--audience-name", "promise", "--log-format", "json")
    assert code == 69, printed[-2000:]
    assert "points at http://127.0.0.2" in printed
    assert signature
    assert signature[0] not in printed
    for name in ("SPOTIFY_ADS_REFRESH_TOKEN", "SPOTIFY_ADS_CLIENT_SECRET"):
        assert os.environ[name] not in printed, f"{name} was printed"


# --- "written atomically: a failed run never replaces a good file" (nor the input, nor /dev) --
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["prepare", "{input}", "-o", "{input}"], id="prepare-output"),
        pytest.param(["prepare", "{input}", "-o", "out.csv", "--report", "{link}"], id="report"),
        pytest.param(["prepare", "{input}", "-o", "out.csv", "--rejects", "{input}"], id="rejects"),
        pytest.param(
            ["sync", "{input}", "--audience-name", "x1", "--dry-run", "--report", "{link}"],
            id="sync-report",
        ),
    ],
)
def test_the_input_is_never_overwritten(env: Sandbox, tmp_path: Path, args: list[str]) -> None:
    source = tmp_path / "same.csv"
    source.write_bytes(FIXTURE.read_bytes())
    (tmp_path / "link.csv").symlink_to(source)
    names = {"{input}": str(source), "{link}": str(tmp_path / "link.csv")}
    code, printed = cli(*(names.get(arg, arg) for arg in args))
    assert code == 73, printed[-2000:]
    assert "is the input file" in printed
    assert source.read_bytes() == FIXTURE.read_bytes()


def test_a_fifo_output_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, printed = cli("prepare", str(FIXTURE), "-o", str(fifo), "--log-format", "json")
    reader.join(timeout=60)
    assert code == 0, printed[-2000:]
    assert received[0].startswith(b"type,value\n")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_stdout_on_a_full_device_is_exit_73(tmp_path: Path) -> None:
    full = tmp_path / "full"  # a private twin of /dev/full: never the machine's own device
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        out = open(full, "wb")  # noqa: SIM115
    except OSError:
        pytest.skip("cannot create a character device here (needs root and a dev mount)")
    with out:
        done = subprocess.run(
            [sys.executable, "-m", "spotify_audience_sync", "prepare", str(FIXTURE), "-o", "-"],
            stdout=out, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 73, done.stderr[-2000:]
    assert "disk is full" in done.stderr
    assert "internal error" not in done.stderr
    assert stat.S_ISCHR(full.stat().st_mode)


# --- "Memory does not grow with the segment" (nor with its duplicates) -------------------------
def _peak_mb(source: Path, out: Path) -> float:
    """Peak RSS (MB) of a `prepare` child of ``source``; it must succeed."""
    command = [sys.executable, "-m", "spotify_audience_sync", "prepare", str(source)]
    done, peak = run_with_peak_rss(
        [*command, "-o", str(out), "-q"],
        out.with_name(out.name + ".peak"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return peak


def test_memory_stays_bounded_with_a_million_identical_rows(tmp_path: Path) -> None:
    """One row repeated is the worst case: every copy lands in one partition. 5M such rows
    peaked at 3 GB before issue 20 (`benchmarks/bench_prepare.py --only duplicates`); 1M at
    690 MB, 560 MB above a 100-row file's run (now: ~330 MB, ~200 above)."""
    line = b"same.person@example.com,+1 212 555 0134\n"
    small, large = tmp_path / "small.csv", tmp_path / "same.csv"
    small.write_bytes(b"email,phone\n" + line * 100)
    with large.open("wb") as out:
        out.write(b"email,phone\n")
        for _ in range(10):
            out.write(line * 100_000)
    baseline = _peak_mb(small, tmp_path / "small-out.csv")  # also warms the phone-table cache
    peak = _peak_mb(large, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().count("\n") == 3  # header and two hashes
    assert peak < 400, f"peak RSS {peak:.0f} MB"
    assert peak - baseline < 300, f"{peak - baseline:.0f} MB above a 100-row run"


# --- file descriptors: "one read for many syncs" must not cost 64 files per sync ---------------
def test_twelve_consumers_of_one_read_fit_under_ulimit_256(tmp_path: Path) -> None:
    source = tmp_path / "seg.csv"
    source.write_text(
        "email,phone\n" + "".join(f"p{i}@example.com,+1 212 555 {i:04d}\n" for i in range(2000))
    )
    script = (
        "from spotify_audience_sync.segment.pipeline import PrepareOptions\n"
        "from spotify_audience_sync.segment.sources import open_source\n"
        "from spotify_audience_sync.segment.split import Split, prepare_split\n"
        "import sys\n"
        "with open_source(sys.argv[1]) as s:\n"
        "    out = prepare_split(s, [Split(PrepareOptions()) for _ in range(12)])\n"
        "print(len(out))\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    done = subprocess.run(
        [sys.executable, "-c", script, str(source)],
        preexec_fn=limit, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "12"


# --- "Every code it can return" is documented, and each one is reachable -----------------------
def test_every_exit_code_is_documented_in_the_readme_and_the_container_doc() -> None:
    for row in EXIT_TABLE:
        code = str(row.code)
        assert re.search(rf"^\| (\d+, )?{code}(, \d+)? \|", README, re.M), f"README: {code}"
        assert re.search(rf"^\| (\d+, )?{code}(, \d+)? \|", CONTAINER, re.M), f"container: {code}"


def _signalled(code: int) -> tuple[int, str]:
    """SIGINT (130) or SIGTERM (143) while `prepare` reads a stdin that has not ended."""
    import signal

    command = [sys.executable, "-m", "spotify_audience_sync", "prepare", "-", "-o", "o.csv"]
    child = subprocess.Popen(
        [*command, "--log-format", "json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(b"email\n" + b"someone@example.com\n" * 1000)
    child.stdin.flush()
    line = child.stdout.readline()  # the "columns" event: reading has begun
    child.send_signal(signal.SIGINT if code == 130 else signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    return child.returncode, (line + out + err).decode()


def _reach(tmp_path: Path, code: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str] | None:
    """Trigger ``code`` from the command line where that takes no server; None otherwise."""
    good, out = str(FIXTURE), str(tmp_path / "out.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("email\n")
    if code in (130, 143):
        return _signalled(code)
    if code == 1:
        import spotify_audience_sync.segment.pipeline as pipeline

        def bug(*_: Any, **__: Any) -> None:
            raise RuntimeError("a planted bug")

        monkeypatch.setattr(pipeline, "prepare_segment", bug)
    if code == 78:
        monkeypatch.setenv("SPOTIFY_ADS_UPLOAD_CHUNK_SIZE", "3")
    monkeypatch.setenv("SPOTIFY_ADS_STATE_URL", "postgresql://postgres:pw@127.0.0.1:1/test")
    commands: dict[int, list[str]] = {
        0: ["prepare", good, "-o", out],
        1: ["prepare", good, "-o", out],
        2: ["prepare", good, "--no-such-flag"],
        65: ["prepare", str(empty), "-o", out],
        66: ["prepare", str(tmp_path / "missing.csv"), "-o", out],
        73: ["prepare", good, "-o", str(tmp_path / "no" / "dir.csv")],
        75: ["history", "--ad-account-id", "3f1d8c2e-5b6a-4c7d-9e8f-0a1b2c3d4e5f"],
        78: ["prepare", good, "-o", out],
    }
    return cli(*commands[code]) if code in commands else None


@pytest.mark.parametrize("code", [row.code for row in EXIT_TABLE])
def test_every_exit_code_is_reachable(
    code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reached here from the CLI when no server is needed; otherwise some test of the suite
    must assert it (a code nothing can reach would be a lie in the table)."""
    monkeypatch.chdir(tmp_path)
    reached = _reach(tmp_path, code, monkeypatch)
    if reached is not None:
        assert reached[0] == code, reached[1][-2000:]
        if code == 1:
            assert "a planted bug" not in reached[1], "an unexpected error's text is withheld"
        return
    pattern = re.compile(rf"(exit_code|returncode|code)\)? == {code}\b|\b{code}, \"")
    names = {10: "EXIT_DECLINED"}
    found = [
        path.name
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.name != Path(__file__).name
        and (pattern.search(text := path.read_text()) or names.get(code, "\0") in text)
    ]
    assert found, f"no test reaches exit code {code}"


def test_the_readme_points_here() -> None:
    assert "tests/test_promises.py" in README
