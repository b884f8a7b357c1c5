"""The Dockerfile, checked without building it (tests/test_container_run.py runs the built image).

* hadolint (from the lock file's dev group) lints the Dockerfile and fails on anything, style
  included.
* The build stage's install steps are replayed here: its ``COPY`` lines copy the same files
  into an empty directory, its ``RUN uv …`` lines run with its ``ENV`` into a fresh virtual
  environment, and the installed (non-editable) console script must print the manifest.

Either test skips, saying why, where its tool is missing; under CI (``CI`` set) it fails instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spotify_audience_sync import __version__
from spotify_audience_sync.cli import main
from spotify_audience_sync.cli.manifest import build_manifest, command_list

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMAGE_VENV = "/app/.venv"


def _tool(name: str) -> str:
    """The tool's path; skip (or fail under CI) when it is missing."""
    found = os.environ.get("UV") if name == "uv" else None
    found = found or shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    reason = f"{name} not found: it comes with `uv sync` (dev group) / the uv installer"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# --- a small Dockerfile reader -----------------------------------------------------------------
@dataclass
class Stage:
    base: str
    """The image the stage starts from, with the global ``ARG`` defaults substituted."""
    name: str | None
    from_line: str = ""
    """The ``FROM`` arguments as written."""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str, str]] = field(default_factory=list)
    """(sources, destination, workdir at that point) for COPY from the build context."""
    runs: list[str] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    steps: list[tuple[str, int, str]] = field(default_factory=list)
    """("COPY" | "RUN", index into copies | runs, workdir) in the file's order."""


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def global_args(text: str) -> dict[str, str]:
    """The ``ARG name=default`` lines before the first ``FROM`` (usable in every ``FROM``)."""
    found: dict[str, str] = {}
    for instruction, args in _instructions(text):
        if instruction == "FROM":
            break
        if instruction == "ARG":
            name, _, default = args.strip().partition("=")
            found[name] = default
    return found


def parse_dockerfile(text: str) -> list[Stage]:
    defaults = global_args(text)
    stages: list[Stage] = []
    for instruction, args in _instructions(text):
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m[1] or m[2]], words[0])
            stages.append(Stage(base=base, name=name, from_line=args))
            continue
        if not stages:  # a global ARG, read by global_args
            continue
        stage = stages[-1]
        if instruction == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                stage.env[key] = value
        elif instruction == "WORKDIR":
            stage.workdir = args.strip()
        elif instruction == "COPY" and "--from=" not in args:
            *sources, destination = shlex.split(args)
            stage.copies.append((sources, destination, stage.workdir))
            stage.steps.append(("COPY", len(stage.copies) - 1, stage.workdir))
        elif instruction == "RUN":
            words = [w for w in shlex.split(args) if not w.startswith("--mount=")]
            stage.runs.append(shlex.join(words))
            stage.steps.append(("RUN", len(stage.runs) - 1, stage.workdir))
        else:
            stage.other.append((instruction, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


# --- the Dockerfile's promises ----------------------------------------------------------------
def test_dockerfile_is_multi_stage_pinned_and_non_root(stages: list[Stage]) -> None:
    build, final = stages[0], stages[-1]
    assert len(stages) == 2
    assert build.name == "build"
    # One base for both stages, a build argument so that the same file builds on the official
    # image and on a Debian-made one where no registry is reachable (docs/container.md).
    assert global_args(DOCKERFILE.read_text(encoding="utf-8")).keys() == {"BASE_IMAGE"}
    for stage in stages:
        assert stage.from_line.split()[0] == "${BASE_IMAGE}"
        image, _, tag = stage.base.partition(":")
        assert image == "python"
        assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), f"pin the patch: {stage.base}"
    # uv from PyPI, pinned; nothing copied from another image but the build stage.
    assert any(
        "pip install --no-cache-dir --require-hashes -r requirements/uv.txt" in r
        for r in build.runs
    )
    for stage in stages:
        for instruction, args in stage.other:
            if instruction == "COPY":
                assert args.startswith("--from=build "), args
    assert any("uv sync --frozen --no-dev" in run for run in build.runs)
    # Nothing resolved at build time: the lock, or (for the build backend) hashes.
    for run in build.runs:
        if run.startswith("uv pip install"):
            assert "--require-hashes" in run, run
        elif run.startswith("uv "):
            assert "--frozen" in run, run
    other = dict(final.other)
    assert other["USER"].split(":")[0] not in ("0", "root")
    assert json.loads(other["ENTRYPOINT"]) == ["spotify-audience-sync"]
    assert json.loads(other["CMD"]) == ["--help"]
    assert json.loads(other["VOLUME"]) == ["/data"]
    assert final.env["SPOTIFY_ADS_TOKEN_STORE"].startswith("/data/")
    assert final.env["SPOTIFY_ADS_STATE_DIR"].startswith("/data/")
    assert final.env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert final.env["PYTHONUNBUFFERED"] == "1"


def test_no_secret_is_baked_in(stages: list[Stage]) -> None:
    secret_settings = ("CLIENT_SECRET", "REFRESH_TOKEN", "CLIENT_ID", "AD_ACCOUNT_ID")
    for stage in stages:
        for key in stage.env:
            assert not key.endswith(secret_settings), key
        assert all(instruction != "ARG" for instruction, _ in stage.other)  # BASE_IMAGE only
        for sources, _, _ in stage.copies:
            assert all(Path(source).name != ".env" for source in sources)


def test_build_context_holds_only_what_the_dockerfile_copies(stages: list[Stage]) -> None:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "exclude everything, then re-include what is copied"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in stages
        for sources, _, _ in stage.copies
        for source in sources
    }
    assert copied == allowed


# --- hadolint -----------------------------------------------------------------------------------
def test_hadolint_finds_nothing() -> None:
    hadolint = _tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile() -> None:
    """A control: the lint above is not passing because hadolint checks nothing."""
    hadolint = _tool("hadolint")
    bad = "FROM python:latest\nRUN pip install uv\nCMD spotify-audience-sync\n"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3025"):
        assert rule in result.stdout


# --- the install steps, replayed ----------------------------------------------------------------
def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without the outer virtual env and project settings."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not k.startswith(("UV_", "SPOTIFY_ADS_"))
    }
    return {**keep, **extra}


def _copy(sources: list[str], destination: str, workdir: str, context: Path) -> None:
    """``COPY sources destination`` from the repository into ``context`` (the image's /)."""
    target = context / Path(workdir).relative_to("/") / destination
    for source in sources:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)


@pytest.mark.slow
def test_install_steps_replayed_from_the_lock_give_a_working_command(
    stages: list[Stage], tmp_path: Path
) -> None:
    uv = _tool("uv")
    build, final = stages[0], stages[-1]
    context = tmp_path / "context"
    venv = tmp_path / "venv"
    assert build.env["UV_PROJECT_ENVIRONMENT"] == IMAGE_VENV
    env = _child_env(
        {
            **build.env,
            "UV_PROJECT_ENVIRONMENT": str(venv),
            # The image's Python is 3.11 as here; bytecode compiling is the image's business.
            "UV_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
            "UV_COMPILE_BYTECODE": "0",
            "UV_NO_PROGRESS": "1",
        }
    )
    # Besides the uv steps, the build stage only installs the C compiler (this machine has one)
    # and uv itself (the replay uses this machine's uv), and prunes data the tool never reads
    # from the venv (replayed: the command must still work without it).
    prefixes = ("uv ", "set -- gcc", "python3.11 -m venv", f"site={IMAGE_VENV}/")
    assert all(run.startswith(prefixes) for run in build.runs)
    for kind, index, at in build.steps:  # in order: a RUN sees only what was copied before it
        if kind == "COPY":
            _copy(*build.copies[index], context)
            continue
        run, workdir = build.runs[index], context / Path(at).relative_to("/")
        if run.startswith("site="):  # site=DIR && rm -rf "$site/a" ...: the same paths, here
            words = shlex.split(run)
            site = words[0].removeprefix("site=").replace(IMAGE_VENV, str(venv))
            assert words[1:4] == ["&&", "rm", "-rf"], run
            for pattern in words[4:]:
                for path in Path("/").glob(pattern.replace("$site", site).lstrip("/")):
                    shutil.rmtree(path)
            assert not (Path(site) / "phonenumbers" / "geodata").exists()
            continue
        if not run.startswith("uv "):
            assert "apt-get install" in run or "pip install --no-cache-dir --require-hashes" in run
            continue
        workdir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [uv, *shlex.split(run.replace(IMAGE_VENV, str(venv)))[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, f"{run}\n{result.stderr[-3000:]}"

    # Run the way the image runs: its ENV, PATH to the venv, WORKDIR /data (an empty dir here).
    data = tmp_path / "data"
    data.mkdir()
    runtime = {k: v for k, v in final.env.items() if k != "PATH"}
    run_env = _child_env(
        {**runtime, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    )
    command = venv / "bin" / "spotify-audience-sync"

    def run(*args: str, program: Path = command) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program), *args],
            cwd=data,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    spec = run("spec")
    assert spec.returncode == 0, spec.stderr
    manifest = json.loads(spec.stdout)
    assert manifest["version"] == __version__
    assert manifest == build_manifest(command_list(main)), (
        "the installed wheel must describe itself as the source"
    )

    assert run("--help").returncode == 0  # the image's CMD

    # The wheel carries the compiled extension (the build stage has a compiler).
    probe = "from spotify_audience_sync.identifiers import hashing; print(hashing.native())"
    python = run("-c", probe, program=venv / "bin" / "python")
    assert python.stdout.strip() == "True", python.stderr

    status = run("auth", "status")
    assert status.returncode == 0, status.stderr
    assert f"token store:    {final.env['SPOTIFY_ADS_TOKEN_STORE']}" in status.stdout

    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u, spotify_audience_sync as s;"
            "print(s.__file__); print(u.find_spec('pytest') is None);"
            "print(u.find_spec('setuptools') is None)",
        ],
        cwd=data,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    installed_at, no_pytest, no_setuptools = where.stdout.split()
    assert Path(installed_at).is_relative_to(venv), "installed as a wheel, not editable"
    assert no_pytest == "True", "--no-dev: no dev dependency in the image"
    assert no_setuptools == "True", "the build backend builds the wheel, the image never ships it"
