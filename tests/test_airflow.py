"""The plan DAG in a real Airflow: `airflow dags test` maps one task per sync and runs the CLI.

Airflow lives in its own cached virtual environment (scripts/airflow-test-env: installed once
per machine, ~200 MB, never in the project's lock). Set SAS_SKIP_AIRFLOW=1 to skip this test
where that download is not possible; CI runs it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from spotify_audience_sync.errors import EXIT_TABLE
from spotify_audience_sync.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
DAG = ROOT / "deploy" / "airflow" / "spotify_audience_sync_plan_dag.py"
PG_URL = os.environ.get("SAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLI = Path(sys.executable).parent / "spotify-audience-sync"


def _constants() -> dict[str, tuple[int, ...]]:
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Tuple)
    }


def test_the_dag_retries_only_the_retryable_codes_and_skips_3_and_5() -> None:
    constants = _constants()
    assert set(constants["RETRY_ON_EXIT_CODE"]) == {r.code for r in EXIT_TABLE if r.retryable}
    assert set(constants["SKIP_ON_EXIT_CODE"]) == {3, 5}


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    if os.environ.get("SAS_SKIP_AIRFLOW"):
        pytest.skip("SAS_SKIP_AIRFLOW is set: the real Airflow run is skipped")
    made = subprocess.run(
        [str(ROOT / "scripts" / "airflow-test-env")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Path(made.stdout.strip())


def _execute(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def tiers_table() -> Iterator[str]:
    name = f"sas_airflow_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _execute(
            f"""CREATE TABLE {name} AS
            SELECT 'flow' || i || '@example.com' AS email, (ARRAY['a', 'b'])[1 + i % 2] AS tier
            FROM generate_series(0, 2199) AS i"""
        )
    except Exception as exc:  # any driver error means: no server here
        pytest.skip(f"PostgreSQL not reachable ({type(exc).__name__})")
    yield name
    _execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.slow
def test_airflow_runs_every_sync_of_the_plan(
    airflow_venv: Path, env: Sandbox, tmp_path: Path, tiers_table: str, pg_url: str
) -> None:
    from cryptography.fernet import Fernet

    (tmp_path / "gold.csv").write_text(
        "email\n" + "".join(f"gold{i}@example.com\n" for i in range(1200))
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
syncs:
  - name: gold-customers
    input: {tmp_path / "gold.csv"}
    audience_name: Gold customers
  - name: tiers
    query: SELECT email, tier FROM {tiers_table}
    database_url_env: WAREHOUSE_URL
    audience_column: tier
    audience_name_template: "Tier {{value}}"
"""
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(DAG, dags / DAG.name)
    environ = {
        **os.environ,  # the env fixture's SPOTIFY_ADS_* point at the sandbox
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SAS_PLAN": str(plan),
        "SAS_CLI": str(CLI),
        "WAREHOUSE_URL": PG_URL,
        # Tasks share nothing on disk: state, locks, history and the rotated refresh token
        # (encrypted) live in PostgreSQL, as on workers spread over machines.
        "SPOTIFY_ADS_STATE_URL": pg_url,
        "SPOTIFY_ADS_TOKEN_KEY": Fernet.generate_key().decode(),
    }
    environ.pop("SPOTIFY_ADS_STATE_DIR", None)
    airflow = str(airflow_venv / "bin" / "airflow")
    started = time.monotonic()
    subprocess.run(
        [airflow, "db", "migrate"], env=environ, check=True, capture_output=True, timeout=300
    )
    run = subprocess.run(
        [airflow, "dags", "test", "spotify_audience_sync_plan"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    print(f"airflow db migrate + dags test: {seconds:.0f} s")

    audiences = {a["name"]: a for a in env.audiences.list(env.ad_account_id, {})["audiences"]}
    assert sorted(audiences) == ["Gold customers", "Tier a", "Tier b"], log[-4000:]
    assert len(env.membership(audiences["Gold customers"]["id"])) == 1200
    assert len(env.membership(audiences["Tier a"]["id"])) == 1100
    assert len(env.membership(audiences["Tier b"]["id"])) == 1100
    # Every mapped task ran: one result line per sync in the task logs.
    results = [
        json.loads(line[line.index("{") :])
        for line in log.splitlines()
        if '"event":"result"' in line and '"command":"run"' in line
    ]
    assert sorted(r["syncs"][0]["name"] for r in results) == ["gold-customers", "tiers"]
    # One history row per audience, in the database.
    history = subprocess.run(
        [sys.executable, "-m", "spotify_audience_sync", "history", "--json"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert sorted(r["audience_name"] for r in rows) == ["Gold customers", "Tier a", "Tier b"]
    assert {r["action"] for r in rows} == {"created"}
