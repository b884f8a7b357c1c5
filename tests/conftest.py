"""Shared fixtures: the sandbox as a real process and in a thread, fake clocks, upload helpers.

Every address used is 127.0.0.1 on a port the OS picks: nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest

from spotify_audience_sync.sandbox import Sandbox, run_sandbox

READY_TIMEOUT = 60.0
#: What `spotify-audience-sync sandbox` prints as export lines, and which of them isolate it.
SANDBOX_ISOLATION = frozenset(
    {"SPOTIFY_ADS_TOKEN_STORE", "SPOTIFY_ADS_STATE_DIR", "SPOTIFY_ADS_REFRESH_TOKEN"}
)
SANDBOX_PRINTS = SANDBOX_ISOLATION | {
    f"SPOTIFY_ADS_{name}"
    for name in (
        "CLIENT_ID",
        "CLIENT_SECRET",
        "AD_ACCOUNT_ID",
        "API_BASE_URL",
        "AUTHORIZE_URL",
        "TOKEN_URL",
    )
}


@pytest.fixture(scope="session", autouse=True)
def _phone_table_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled phone tables go to a directory of this test session, not the user's cache
    (child processes inherit it)."""
    from spotify_audience_sync.identifiers.phones import native as phones_native

    previous = os.environ.get("SPOTIFY_AUDIENCE_SYNC_CACHE_DIR")
    folder = str(tmp_path_factory.mktemp("cache"))
    os.environ["SPOTIFY_AUDIENCE_SYNC_CACHE_DIR"] = folder
    phones_native.use_cache_dir(folder)  # in this process, for code that bypasses the pipeline
    yield
    phones_native.use_cache_dir(None)
    if previous is None:
        os.environ.pop("SPOTIFY_AUDIENCE_SYNC_CACHE_DIR", None)
    else:
        os.environ["SPOTIFY_AUDIENCE_SYNC_CACHE_DIR"] = previous


@dataclass
class SandboxProcess:
    """A ``spotify-audience-sync sandbox`` child process and how to reach it."""

    base_url: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    @property
    def api_base_url(self) -> str:
        return self.env["SPOTIFY_ADS_API_BASE_URL"]

    @property
    def ad_account_id(self) -> str:
        return self.env["SPOTIFY_ADS_AD_ACCOUNT_ID"]

    @property
    def token_url(self) -> str:
        return self.env["SPOTIFY_ADS_TOKEN_URL"]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx2.request(method, f"{self.base_url}/_sandbox{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()


def _next_line(lines: queue.Queue[str], process: subprocess.Popen[str], errors: Path) -> str:
    """The child's next stdout line; fail fast (with its stderr) if it dies or stalls."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.1)
        except queue.Empty:
            if process.poll() is not None:
                break
    detail = errors.read_text(encoding="utf-8", errors="replace")[-2000:]
    pytest.fail(f"sandbox process not ready (exit={process.poll()}):\n{detail}")


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The emulator started as users start it, on a free loopback port; reset per test."""
    command = [sys.executable, "-m", "spotify_audience_sync", "sandbox", "--port", "0"]
    command += ["--processing-delay", "0.2"]
    errors = tmp_path_factory.mktemp("sandbox") / "stderr.txt"
    with errors.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout or []])
    pump.daemon = True
    pump.start()
    try:
        first = _next_line(lines, process, errors)
        assert first.startswith("sandbox listening on http://127.0.0.1:"), first
        printed: dict[str, str] = {}
        while len(printed) < len(SANDBOX_PRINTS):
            line = _next_line(lines, process, errors).strip().removeprefix("export ")
            name, _, value = line.partition("=")
            printed[name] = "".join(shlex.split(value))
        assert set(printed) == SANDBOX_PRINTS, printed
        # Tests point the tool at the sandbox; where tokens and state go, each test decides.
        env = {k: v for k, v in printed.items() if k not in SANDBOX_ISOLATION}
        started = SandboxProcess(first.split()[-1], env, process)
        assert started.admin("GET", "/health")["ok"] is True
        yield started
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def sandbox_app(sandbox_process: SandboxProcess) -> SandboxProcess:
    """The shared sandbox process with fresh state and no faults."""
    sandbox_process.admin("POST", "/reset")
    sandbox_process.admin(
        "POST", "/faults", json={"processing_delay": 0.2, "rate_limit": 1500, "rate_window": 30.0}
    )
    return sandbox_process


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """An in-process sandbox (own thread, own port) for tests that poke at its state."""
    with run_sandbox(processing_delay=0.05) as running:
        yield running


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point every SPOTIFY_ADS_* setting at the in-thread sandbox, in an empty directory."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SPOTIFY_ADS_REFRESH_TOKEN", str(sandbox.mint_tokens()["refresh_token"]))
    monkeypatch.setenv("SPOTIFY_ADS_TOKEN_STORE", str(tmp_path / "tokens.json"))
    monkeypatch.setenv("SPOTIFY_ADS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return sandbox


def load_script(name: str) -> Any:
    """A module from ``scripts/`` (not a package), loaded by path for the tests that check it."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeClock:
    """Frozen time that only moves when told to, or when code under test 'sleeps'."""

    now: float = 1_800_000_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def make_csv() -> Callable[[int], bytes]:
    """A ``type,value`` file of ``n`` distinct e-mail hashes (as the encoder writes them)."""

    def build(n: int, start: int = 0) -> bytes:
        rows = "".join(
            f"EMAIL_ID_SHA256,{sha(f'user{i}@example.com')}\n" for i in range(start, start + n)
        )
        return ("type,value\n" + rows).encode()

    return build


def gcs_upload(upload_url: str, data: bytes, chunk: int | None = None) -> httpx2.Response:
    """Resumable upload the way the contract describes it (start, then one or more PUTs)."""
    with httpx2.Client(timeout=30) as http:
        started = http.post(
            upload_url, headers={"x-goog-resumable": "start", "Content-Type": "text/csv"}
        )
        assert started.status_code == 201, started.text
        session = started.headers["Location"]
        if chunk is None:
            return http.put(session, content=data)
        offset, response = 0, None
        while offset < len(data):
            piece = data[offset : offset + chunk]
            last = offset + len(piece) == len(data)
            total = str(len(data)) if last else "*"
            headers = {"Content-Range": f"bytes {offset}-{offset + len(piece) - 1}/{total}"}
            response = http.put(session, content=piece, headers=headers)
            offset += len(piece)
        assert response is not None
        return response


@pytest.fixture
def upload() -> Callable[..., httpx2.Response]:
    return gcs_upload


# --- the real PostgreSQL on 127.0.0.1:5432 (database ``test``), one throwaway schema per test --
PG_BASE = os.environ.get("SAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Trust auth ignores it; it is in the state URL so tests can prove it never appears anywhere.
PG_PASSWORD = "pw-Never-Shown-7f3a"


def _pg_connect() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_BASE, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # the machine and CI have it: fail, never skip
        pytest.fail(f"PostgreSQL at {PG_BASE} is not reachable: {exc}")


def pg_execute(url: str, *statements: str) -> None:
    """Run statements with psycopg (the driver the query source and the state use) on ``url``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def require_postgres() -> None:
    """Fail (never skip) when the test database is not there: the machine and CI have it."""
    _pg_connect().close()


def pg_query(sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement on the test database as the tests' own connection."""
    with _pg_connect() as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A state URL with a password, in schema ``sas_test_<random>``, dropped after the test."""
    import uuid

    schema = f"sas_test_{uuid.uuid4().hex[:12]}"
    scheme, _, rest = PG_BASE.partition("://")
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.partition(":")[0] or "postgres"
    with _pg_connect() as conn:
        yield f"{scheme}://{user}:{PG_PASSWORD}@{host}?schema={schema}"
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- sync state rows, as the state backends store them ---------------------------------------
STATE_ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


def sync_state(**changes: object) -> Any:
    """A SyncState of 1,234 emails for audience ``a1``, with ``changes``."""
    from spotify_audience_sync.sync.state import SyncState

    base = {
        "ad_account_id": STATE_ACCOUNT,
        "audience_id": "a1",
        "audience_name": "n",
        "synced_at": "2026-11-22T10:00:00Z",
        "identifiers": 1234,
        "counts": {"email": 1234},
        "fingerprint": "f" * 64,
    }
    base.update(changes)
    return SyncState(**base)  # type: ignore[arg-type]


# --- a webhook receiver on loopback (notifications) -------------------------------------------
SECRET_PATH = "/services/T000/B000/webhook-secret-part"


class Receiver:
    """A webhook receiver: answers the next statuses in order (then 200), keeps each body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    thread = threading.Thread(target=got.server.serve_forever, daemon=True)
    thread.start()
    yield got
    got.server.shutdown()
    got.server.server_close()


#: Starts argv[2:], waits for it and writes its peak RSS (kB, from wait4) to the file argv[1].
_PEAK_RSS_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_with_peak_rss(
    command: list[str], peak_file: Path, **kwargs: Any
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` (``subprocess.run`` arguments in ``kwargs``): its result and its own peak
    RSS in MB.

    Not ``wait4`` on a child of the test process: subprocess starts children with vfork (or
    fork), and Linux carries the parent's peak into the child's ``ru_maxrss`` (and
    ``getrusage(RUSAGE_SELF)``) at exec. In a whole-suite pytest that once held 900 MB, every
    child "peaks" at 900 MB. A small Python in between starts the command, so the command
    inherits only that process's ~10 MB, and reports ``wait4``'s figure for it.
    """
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_WRAPPER, str(peak_file), *command], **kwargs
    )
    return done, int(peak_file.read_text(encoding="utf-8")) / 1024


# --- raw identifiers of a segment, to prove none leaks -------------------------------------
def raw_identifiers(path: Path) -> set[str]:
    """Every raw identifier in a segment, in the forms a leak would take."""
    import csv

    values: set[str] = set()
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            for value in row.values():
                value = (value or "").strip()
                if len(value) >= 6 and len(value) != 64:
                    values.update({value, value.lower()})
    return values


def count_leaks(text: str, raw: set[str]) -> int:
    """How many raw identifiers appear in ``text``: a count, so a failure prints no values."""
    return sum(1 for value in raw if value in text)
