"""Airflow DAG: one task per sync of a plan, mapped at run time from `run PLAN --list --json`.

An example to copy into your DAGs folder (tests/test_airflow.py runs it for real with
`airflow dags test` against the sandbox). Airflow needs none of the project's dependencies:
each task runs the CLI as a program, by the path in SAS_CLI (e.g. the `.venv/bin/
spotify-audience-sync` of a checkout, or a wrapper that runs the image).

Settings come from the environment of the workers: SPOTIFY_ADS_* (credentials, the ad account,
and SPOTIFY_ADS_STATE_URL for the PostgreSQL state backend, which keeps tasks on different
workers from syncing one audience at once) and the variables the plan names in
database_url_env. Exit codes, as docs/scheduling.md gives them:

* 0 succeeds; 3 (EMPTY: Spotify matched nobody) and 5 (still PROCESSING at the wait timeout)
  mark the task *skipped*: the upload happened, nothing to retry, but worth a look.
* 75, 130, 143 (temporary failure, interrupted) are what the retries are for.
* any other code fails the task at once, without retries: a retry would fail the same way.
* max_active_runs=1 keeps two runs of the plan apart; the per-audience locks would refuse the
  second one anyway.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import dag, task
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowFailException, AirflowSkipException

PLAN = os.environ.get("SAS_PLAN", "/opt/spotify-audience-sync/plan.yaml")
CLI = os.environ.get("SAS_CLI", "spotify-audience-sync")
SKIP_ON_EXIT_CODE = (3, 5)
RETRY_ON_EXIT_CODE = (75, 130, 143)


@dag(
    dag_id="spotify_audience_sync_plan",
    description="Mirror every sync of a plan into Spotify customer-list audiences",
    schedule="15 3 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),  # noqa: UP017 (Airflow on 3.10)
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,  # syncs at once: Spotify's rate limits are per app
    tags=["spotify", "audiences"],
)
def spotify_audience_sync_plan() -> None:
    @task
    def syncs() -> list[str]:
        """The plan's sync names: one mapped task each."""
        listed = subprocess.run(
            [CLI, "run", PLAN, "--list", "--json"], check=True, capture_output=True, text=True
        )
        names: list[str] = json.loads(listed.stdout)
        return names

    @task(
        retries=2,
        retry_delay=timedelta(minutes=15),
        execution_timeout=timedelta(hours=3),
        map_index_template="{{ task.op_kwargs['name'] }}",
    )
    def sync(name: str) -> int:
        """One sync of the plan: its JSON lines go to the task log, its exit code decides."""
        code = subprocess.run([CLI, "run", PLAN, "--only", name, "--log-format", "json"]).returncode
        if code in SKIP_ON_EXIT_CODE:
            raise AirflowSkipException(f"{name}: exit {code}, uploaded; look at it (no retry)")
        if code in RETRY_ON_EXIT_CODE:
            raise RuntimeError(f"{name}: exit {code}, a temporary failure; retrying")
        if code != 0:
            raise AirflowFailException(f"{name}: exit {code}; a retry would fail the same way")
        return code

    sync.expand(name=syncs())


spotify_audience_sync_plan()
