"""Example Airflow DAG: run the spotify-audience-sync container once a day on Kubernetes.

An example to copy into your DAGs folder, not part of the package (nothing here imports it, and
Airflow is not a dependency). It needs apache-airflow-providers-cncf-kubernetes, the image in a
registry your cluster can pull from, and the Secret and the volume claim of
deploy/kubernetes/cronjob.yaml (the Secret also holds SPOTIFY_ADS_DATABASE_URL for --query).
docs/scheduling.md explains the exit codes.

* 0 succeeds; 3 (EMPTY: Spotify matched nobody) and 5 (still PROCESSING at the wait timeout)
  mark the task *skipped*: the upload happened, nothing to retry, but worth a look.
* 75 (temporary failure) is what the retries are for; other codes fail the same way again, and
  retrying them is harmless: the guards refuse before any write, and an unchanged segment is
  skipped.
* max_active_runs=1 keeps two runs apart; the state-dir lock would refuse a second one anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

IMAGE = "registry.example.com/spotify-audience-sync:0.1.0"  # your registry, this version

with DAG(
    dag_id="spotify_audience_sync",
    description="Mirror a segment into a Spotify customer-list audience",
    schedule="15 3 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),  # noqa: UP017 (Airflow on 3.10)
    catchup=False,
    max_active_runs=1,
    tags=["spotify", "audiences"],
) as dag:
    sync = KubernetesPodOperator(
        task_id="sync_newsletter_subscribers",
        name="spotify-audience-sync",
        image=IMAGE,
        arguments=[
            "sync",
            "--query",
            "SELECT email, phone FROM crm.customers WHERE newsletter_opt_in",
            "--audience-name",
            "Newsletter subscribers",
            "--report",
            "/data/last-sync.json",
        ],
        env_from=[
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="spotify-audience-sync"))
        ],
        # SPOTIFY_ADS_NOTIFY_URL (a Slack webhook: a secret) comes from the Secret too; the
        # metrics go to the cluster's Pushgateway.
        env_vars=[
            k8s.V1EnvVar(name="SPOTIFY_ADS_TEMP_DIR", value="/tmp"),
            k8s.V1EnvVar(
                name="SPOTIFY_ADS_PUSHGATEWAY_URL",
                value="http://prometheus-pushgateway.monitoring.svc:9091",
            ),
        ],
        volumes=[
            k8s.V1Volume(
                name="data",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name="spotify-audience-sync-data"
                ),
            ),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="8Gi")),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name="data", mount_path="/data"),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        ],
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=10001,
            run_as_group=10001,
            fs_group=10001,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        # The sync never calls the Kubernetes API: no service-account token in the pod.
        automount_service_account_token=False,
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"memory": "4Gi"}
        ),
        skip_on_exit_code=[3, 5],
        retries=2,
        retry_delay=timedelta(minutes=15),
        execution_timeout=timedelta(hours=3),
        get_logs=True,
        on_finish_action="delete_pod",
    )
