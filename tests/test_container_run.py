"""The built image, run for real with podman, the way a locked-down CDP runs a job.

.ci/run builds the image once (``scripts/build-image``) and exports ``SAS_CONTAINER_IMAGE``;
without that variable every test here is skipped, saying so. With it, nothing may be missing:
no podman, an unusable podman, no image or no PostgreSQL fail the test, so CI cannot pass by
skipping.

Every container runs as the image's own user, ``--rm``, ``--read-only`` with a ``--tmpfs /tmp``,
a named volume at ``/data`` (removed afterwards), settings from an ``--env-file``,
``--network host`` (the sandbox and PostgreSQL listen on this host's 127.0.0.1) and a timeout
after which podman kills it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

from conftest import SandboxProcess
from spotify_audience_sync import __version__
from spotify_audience_sync.cli import main
from spotify_audience_sync.cli.manifest import build_manifest, command_list

IMAGE = os.environ.get("SAS_CONTAINER_IMAGE", "")
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "segment.csv"
PG_URL = os.environ.get("SAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUN_TIMEOUT = 120  # seconds a container may run before podman kills it
IMAGE_USER = "10001:10001"

pytestmark = [
    pytest.mark.container,
    pytest.mark.slow,
    pytest.mark.skipif(
        not IMAGE,
        reason="SAS_CONTAINER_IMAGE is not set: .ci/run builds the image and runs these tests "
        "(or scripts/build-image, then export SAS_CONTAINER_IMAGE=localhost/spotify-audience-sync"
        ":test and, on our machines, CONTAINERS_CONF=.ci/containers.conf)",
    ),
]


# --- podman ------------------------------------------------------------------------------------
def _podman(
    *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    podman = shutil.which("podman")
    if podman is None:
        pytest.fail("SAS_CONTAINER_IMAGE is set but podman is not installed")
    result = subprocess.run(
        [podman, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:2])} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    """The image's configuration; fails (never skips) when podman or the image is missing."""
    inspected = json.loads(_podman("image", "inspect", IMAGE).stdout)
    config: dict[str, Any] = inspected[0]["Config"]
    return config


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def events(self) -> list[dict[str, Any]]:
        """stdout as JSON lines: every line must be one object with an event."""
        parsed = [json.loads(line) for line in self.stdout.splitlines()]
        assert all(isinstance(item, dict) and "event" in item for item in parsed), self.stdout
        return parsed

    def result(self) -> dict[str, Any]:
        last = self.events()[-1]
        assert last["event"] == "result", last
        return last


Runner = Callable[..., Run]


@pytest.fixture
def volume(image_config: dict[str, Any]) -> Iterator[str]:
    """A new named volume for /data (it takes the image's /data, owned by uid 10001)."""
    name = f"sas-test-{uuid.uuid4().hex[:12]}"
    _podman("volume", "create", name)
    try:
        yield name
    finally:
        _podman("volume", "rm", "--force", name, check=False)


@pytest.fixture
def env_file(sandbox_app: SandboxProcess, tmp_path: Path) -> Path:
    """Settings for the sandbox on this host, as an operator hands them in (mode 0600)."""
    tokens = sandbox_app.admin("POST", "/tokens")
    settings = {
        **sandbox_app.env,
        "SPOTIFY_ADS_REFRESH_TOKEN": tokens["refresh_token"],
        "SPOTIFY_ADS_DATABASE_URL": PG_URL,
    }
    path = tmp_path / "spotify.env"
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
    return path


@pytest.fixture
def run(image_config: dict[str, Any], volume: str, env_file: Path) -> Runner:
    """``run(*args, mounts=..., entrypoint=...)``: one locked-down container, removed after."""

    def start(*args: str, mounts: tuple[str, ...] = (), entrypoint: str | None = None) -> Run:
        name = f"sas-test-{uuid.uuid4().hex[:12]}"
        command = ["run", "--rm", "--name", name, "--pull=never", "--timeout", str(RUN_TIMEOUT)]
        command += ["--network", "host", "--read-only", "--tmpfs", "/tmp", "-v", f"{volume}:/data"]
        command += ["--env-file", str(env_file)]
        for mount in mounts:
            command += ["-v", mount]
        if entrypoint:
            command += ["--entrypoint", entrypoint]
        try:
            result = _podman(*command, IMAGE, *args, timeout=RUN_TIMEOUT + 30, check=False)
        except subprocess.TimeoutExpired:
            _podman("rm", "--force", "--time", "0", name, check=False)
            pytest.fail(f"container {' '.join(args[:2])} outlived its timeout")
        if result.returncode in (125, 126, 127):  # podman itself, not the CLI, failed
            pytest.fail(f"podman could not run the image ({result.returncode}): {result.stderr}")
        return Run(result.returncode, result.stdout, result.stderr)

    return start


# --- what the image holds ----------------------------------------------------------------------
PROBE = r"""
import importlib.util, json, os, shutil, subprocess
from spotify_audience_sync.identifiers import hashing
listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"],
                        capture_output=True, text=True, check=True).stdout.splitlines()
installed = {line.split()[0] for line in listed if line.split()[1:2] == ["ii"]}
found = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    found += [os.path.join(top, f) for f in files
              if f in ("test_container_run.py", "segment.csv", "native.h", "uv.lock", ".env")
              or (f.endswith(".c") and "spotify_audience_sync" in top)]
print(json.dumps({
    "uid": f"{os.getuid()}:{os.getgid()}",
    "on_path": sorted(t for t in ("gcc", "cc", "c99", "cpp", "uv", "uvx") if shutil.which(t)),
    "dev_packages": sorted(installed & {"gcc", "gcc-12", "cpp", "cpp-12", "libc6-dev",
                                        "python3.11-dev", "libpython3.11-dev"}),
    "modules": sorted(m for m in ("uv", "pytest", "hypothesis", "mypy", "ruff")
                      if importlib.util.find_spec(m)),
    "app": sorted(os.listdir("/app")),
    "dirs": sorted(d for d in ("/src", "/tests", "/app/tests", "/data/tests") if os.path.exists(d)),
    "found": sorted(found),
    "native": hashing.native(),
}))
"""


def test_image_config_runs_as_non_root_and_holds_no_secret(image_config: dict[str, Any]) -> None:
    assert image_config["User"] == IMAGE_USER
    assert image_config["Entrypoint"] == ["spotify-audience-sync"]
    assert image_config["Cmd"] == ["--help"]
    assert "/data" in image_config["Volumes"]
    env = dict(item.split("=", 1) for item in image_config["Env"])
    ours = {key for key in env if key.startswith("SPOTIFY_ADS_")}
    assert ours == {"SPOTIFY_ADS_TOKEN_STORE", "SPOTIFY_ADS_STATE_DIR"}, ours
    for key, value in env.items():
        for word in ("SECRET", "PASSWORD", "REFRESH_TOKEN", "ACCESS_TOKEN", "API_KEY"):
            assert word not in key.upper(), key
        assert "secret" not in value.lower(), key
    assert env["SPOTIFY_ADS_TOKEN_STORE"] == "/data/tokens.json"  # a path, not a token


def test_image_holds_the_venv_and_no_compiler_uv_tests_or_source(run: Runner) -> None:
    probe = run("-c", PROBE, entrypoint="python")
    assert probe.code == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found == {
        "uid": IMAGE_USER,
        "on_path": [],
        "dev_packages": [],
        "modules": [],
        "app": [".venv"],
        "dirs": [],
        "found": [],
        "native": True,  # the C extension was compiled in the build stage
    }


# --- the CLI in the image ----------------------------------------------------------------------
def test_version_spec_and_check(run: Runner, sandbox_app: SandboxProcess) -> None:
    version = run("--version")
    assert (version.code, version.stdout) == (0, f"spotify-audience-sync, version {__version__}\n")

    spec = run("spec")
    assert spec.code == 0, spec.stderr
    assert json.loads(spec.stdout) == build_manifest(command_list(main))

    check = run("check", "--log-format", "human")
    assert check.code == 0, check.stderr
    assert check.stdout.startswith("OK: settings valid, state dir writable, token obtained, ")
    assert f"ad account {sandbox_app.ad_account_id} (Sandbox ad account) readable" in check.stdout

    checked = run("check")  # no terminal: JSON, as a CDP reads it
    assert checked.code == 0, checked.stderr
    (line,) = [json.loads(x) for x in checked.stdout.splitlines()]
    assert (line["event"], line["exit_code"], line["version"]) == ("result", 0, __version__)
    assert line["ad_account_id"] == sandbox_app.ad_account_id


def _prepared_here(*args: str, tmp_path: Path) -> set[tuple[str, str]]:
    """What ``prepare`` makes of the same input on this host: the membership to expect."""
    out = tmp_path / f"prepared-{uuid.uuid4().hex[:8]}.csv"
    result = CliRunner().invoke(main, ["prepare", *args, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        return {(row["type"], row["value"]) for row in csv.DictReader(handle)}


def _membership(sandbox: SandboxProcess, audience_id: str) -> dict[str, Any]:
    members: dict[str, Any] = sandbox.admin("GET", f"/audiences/{audience_id}/membership")
    return members


def test_sync_of_a_mounted_file_then_an_unchanged_one_is_skipped(
    run: Runner, sandbox_app: SandboxProcess, tmp_path: Path
) -> None:
    mounts = (f"{FIXTURE}:/in/segment.csv:ro",)
    args = ("sync", "/in/segment.csv", "--audience-name", "Container file", "--log-format", "json")

    first = run(*args, mounts=mounts)
    assert first.code == 0, first.stdout + first.stderr
    events = [event["event"] for event in first.events()]
    assert events[:2] == ["columns", "prepared"]
    assert "created" in events
    result = first.result()
    assert result["exit_code"] == 0
    synced = result["sync"]
    assert (synced["action"], synced["status"]) == ("created", "BOOKABLE")
    expected = _prepared_here(str(FIXTURE), tmp_path=tmp_path)
    members = _membership(sandbox_app, synced["audience_id"])
    assert {(row["type"], row["value"]) for row in members["rows"]} == expected
    assert members["rows_total"] == synced["identifiers"] == len(expected)

    second = run(*args, mounts=mounts)
    assert second.code == 0, second.stdout + second.stderr
    assert [event["event"] for event in second.events()] == [
        "columns",
        "prepared",
        "skipped",
        "result",
    ]
    again = second.result()["sync"]
    assert again["action"] == "skipped"
    assert again["audience_id"] == synced["audience_id"]
    assert again["upload"]["requests"] == 0
    assert _membership(sandbox_app, synced["audience_id"])["upload_id"] == members["upload_id"]


# --- a query against PostgreSQL on the host ----------------------------------------------------
def _execute(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


PEOPLE = 1_200


@pytest.fixture
def people() -> Iterator[str]:
    """A small table of people (every email distinct, phones repeating); dropped afterwards."""
    name = f"sas_container_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _execute(
            f"""
            CREATE TABLE {name} AS
            SELECT i AS id,
              CASE WHEN i % 97 = 0 THEN NULL ELSE ' Person' || i || '@Example.com' END AS email,
              '+44 20 7946 ' || lpad((i % 1000)::text, 4, '0') AS phone
            FROM generate_series(1, {PEOPLE}) AS i
            """
        )
    except Exception as exc:  # any driver error: this run cannot test the query path
        pytest.fail(f"PostgreSQL at {PG_URL} is needed for the container test: {exc!r}")
    try:
        yield name
    finally:
        _execute(f"DROP TABLE IF EXISTS {name}")


def test_sync_of_a_query_against_postgres_on_the_host(
    run: Runner, sandbox_app: SandboxProcess, people: str, tmp_path: Path
) -> None:
    query = f"SELECT email, phone FROM {people} ORDER BY id"
    synced = run(
        "sync", "--query", query, "--audience-name", "Container query", "--log-format", "json"
    )
    assert synced.code == 0, synced.stdout + synced.stderr
    result = synced.result()
    counts = result["prepare"]["identifiers"]
    assert counts["email"]["written"] == PEOPLE - PEOPLE // 97
    assert counts["phone"]["written"] == 1_000
    members = _membership(sandbox_app, result["sync"]["audience_id"])
    rows = {(row["type"], row["value"]) for row in members["rows"]}
    assert rows == _prepared_here("--query", query, "--database-url", PG_URL, tmp_path=tmp_path)
    emails = {
        hashlib.sha256(f"person{i}@example.com".encode()).hexdigest()
        for i in range(1, PEOPLE + 1)
        if i % 97
    }
    assert {value for kind, value in rows if kind == "EMAIL_ID_SHA256"} == emails
    output = (synced.stdout + synced.stderr).lower()
    assert "person1@example.com" not in output  # counts only, never an identifier


# --- a failure ---------------------------------------------------------------------------------
def test_a_bad_column_fails_with_65_a_json_error_and_changes_nothing(
    run: Runner, sandbox_app: SandboxProcess
) -> None:
    failed = run(
        "sync",
        "/in/segment.csv",
        "--audience-name",
        "Container failure",
        "--email-column",
        "mail",
        "--log-format",
        "json",
        mounts=(f"{FIXTURE}:/in/segment.csv:ro",),
    )
    assert failed.code == 65
    message = (
        "/in/segment.csv: no column 'mail' (--email-column); "
        "columns are 'Email', 'phone', 'device_id'."
    )
    assert failed.events() == [
        {
            "ts": failed.events()[0]["ts"],
            "run_id": failed.events()[0]["run_id"],
            "version": __version__,
            "level": "error",
            "event": "error",
            "error": "InputError",
            "message": message,
            "exit_code": 65,
            "retryable": False,
        }
    ]
    assert failed.stderr == f"error: {message}\n"
    token = sandbox_app.admin("POST", "/tokens")["access_token"]
    listed = httpx2.get(
        f"{sandbox_app.api_base_url}/ad_accounts/{sandbox_app.ad_account_id}/audiences",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["audiences"] == []
