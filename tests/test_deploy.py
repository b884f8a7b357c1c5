"""The scheduling examples in deploy/: they must run this version's image with flags that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from spotify_audience_sync import __version__
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.cli.manifest import exit_code_list

ROOT = Path(__file__).resolve().parents[1]
CRONJOB = ROOT / "deploy" / "kubernetes" / "cronjob.yaml"
DAG = ROOT / "deploy" / "airflow" / "spotify_audience_sync_dag.py"
IMAGE_SUFFIX = f"/spotify-audience-sync:{__version__}"
RETRYABLE = {c["code"] for c in exit_code_list() if c["retryable"]}
FAILING = {c["code"] for c in exit_code_list()} - {0} - RETRYABLE


def assert_sync_args_parse(args: list[str]) -> None:
    """The arguments are a `sync` command line the CLI accepts (parsed, not run)."""
    assert args[0] == "sync"
    # The group's context settings (-h) must reach the child: click caches a command's help
    # option from the first context that asks for it, and the README's help blocks show it.
    parent = click.Context(main, info_name="spotify-audience-sync", **main.context_settings)
    command = main.get_command(parent, "sync")
    assert command is not None
    with command.make_context("sync", list(args[1:]), parent=parent) as ctx:
        assert bool(ctx.params["input_path"]) != bool(ctx.params["query"]), "INPUT or --query"
        assert not ctx.params["database_url"], "a database URL holds a password: use the Secret"
        assert ctx.params["audience_name"] or ctx.params["audience_id"]


def dockerfile_uid() -> int:
    user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert user is not None
    return int(user[1])


# --- Kubernetes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    loaded = [d for d in yaml.safe_load_all(CRONJOB.read_text(encoding="utf-8")) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in loaded}


@pytest.fixture(scope="module")
def cronjob(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return documents["CronJob/spotify-audience-sync"]


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def test_cronjob_runs_this_version_one_at_a_time(cronjob: dict[str, Any]) -> None:
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cronjob["spec"]["schedule"].split()) == 5
    (container,) = pod_spec(cronjob)["containers"]
    assert container["image"].endswith(IMAGE_SUFFIX)
    assert_sync_args_parse(container["args"])
    assert "command" not in container, "keep the image's ENTRYPOINT"


def test_cronjob_takes_secrets_from_a_secret(cronjob: dict[str, Any]) -> None:
    (container,) = pod_spec(cronjob)["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "spotify-audience-sync"}}]
    for variable in container.get("env", []):
        assert "valueFrom" in variable or not variable["name"].endswith(
            ("SECRET", "REFRESH_TOKEN")
        ), variable["name"]


def test_cronjob_keeps_state_and_tokens_on_a_claim(
    cronjob: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> None:
    spec = pod_spec(cronjob)
    (container,) = spec["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for setting in ("SPOTIFY_ADS_STATE_DIR", "SPOTIFY_ADS_TOKEN_STORE"):
        path = Path(env[setting])
        mounts = [m for m in container["volumeMounts"] if path.is_relative_to(m["mountPath"])]
        assert mounts, f"{setting} is not on a volume"
        volume = volumes[mounts[0]["name"]]
        assert not mounts[0].get("readOnly")
        claim = volume["persistentVolumeClaim"]["claimName"]
        assert f"PersistentVolumeClaim/{claim}" in documents
    report = container["args"][container["args"].index("--report") + 1]
    assert any(Path(report).is_relative_to(m["mountPath"]) for m in container["volumeMounts"])


def test_cronjob_is_non_root_with_limits_and_bounded_retries(cronjob: dict[str, Any]) -> None:
    job = cronjob["spec"]["jobTemplate"]["spec"]
    spec = pod_spec(cronjob)
    (container,) = spec["containers"]
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == dockerfile_uid()
    assert spec["securityContext"]["fsGroup"] == dockerfile_uid()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert 0 < job["backoffLimit"] <= 5
    assert job["activeDeadlineSeconds"] > 3600, "longer than the default wait timeout"
    if container["securityContext"].get("readOnlyRootFilesystem"):
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_cronjob_retries_only_what_may_pass(cronjob: dict[str, Any]) -> None:
    rules = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    fail_job = [r for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
    (rule,) = fail_job
    assert rule["onExitCodes"]["operator"] == "In"
    assert rule["onExitCodes"]["containerName"] == "sync"
    assert set(rule["onExitCodes"]["values"]) == FAILING
    assert {75, 130, 143} == RETRYABLE


# --- Airflow ------------------------------------------------------------------------------------
def dag_keywords() -> dict[str, Any]:
    tree = ast.parse(DAG.read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "KubernetesPodOperator"
        ):
            found: dict[str, Any] = {}
            for keyword in node.keywords:
                if isinstance(keyword.value, ast.Name):
                    found[str(keyword.arg)] = constants.get(keyword.value.id)
                else:
                    try:
                        found[str(keyword.arg)] = ast.literal_eval(keyword.value)
                    except ValueError:
                        found[str(keyword.arg)] = keyword.value
            return found
    raise AssertionError("no KubernetesPodOperator in the DAG")


def test_dag_compiles() -> None:
    compile(DAG.read_text(encoding="utf-8"), str(DAG), "exec")


def test_dag_runs_this_version_with_flags_that_exist() -> None:
    keywords = dag_keywords()
    assert keywords["image"].endswith(IMAGE_SUFFIX)
    assert_sync_args_parse(keywords["arguments"])
    assert sorted(keywords["skip_on_exit_code"]) == [3, 5]
    assert "env_from" in keywords


def test_dag_and_cronjob_sync_the_same_way(cronjob: dict[str, Any]) -> None:
    (container,) = pod_spec(cronjob)["containers"]
    keywords = dag_keywords()
    assert keywords["arguments"] == container["args"]
    assert keywords["image"] == container["image"]


def test_scheduling_doc_names_every_exit_code() -> None:
    text = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    for entry in exit_code_list():
        assert re.search(rf"\b{entry['code']}\b", text), entry["code"]


# --- Kubernetes without a volume: the PostgreSQL state backend (#14) ------------------------------
CRONJOB_PG = ROOT / "deploy" / "kubernetes" / "cronjob-postgres.yaml"


@pytest.fixture(scope="module")
def cronjob_pg() -> dict[str, Any]:
    (document,) = [d for d in yaml.safe_load_all(CRONJOB_PG.read_text(encoding="utf-8")) if d]
    assert document["kind"] == "CronJob"
    return document


def test_postgres_cronjob_keeps_nothing_on_a_volume(cronjob_pg: dict[str, Any]) -> None:
    spec = pod_spec(cronjob_pg)
    (container,) = spec["containers"]
    assert container["image"].endswith(IMAGE_SUFFIX)
    assert_sync_args_parse(container["args"])
    assert [v.get("emptyDir") is not None for v in spec["volumes"]] == [True]
    assert not any("persistentVolumeClaim" in v for v in spec["volumes"])
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert "SPOTIFY_ADS_STATE_URL" not in env, "it holds a password: from the Secret"
    assert "SPOTIFY_ADS_TOKEN_KEY" not in env, "a secret: from the Secret"
    assert container["envFrom"] == [{"secretRef": {"name": "spotify-audience-sync"}}]
    text = CRONJOB_PG.read_text(encoding="utf-8")
    for setting in ("SPOTIFY_ADS_STATE_URL", "SPOTIFY_ADS_TOKEN_KEY"):
        assert setting in text, f"the header must say {setting} goes in the Secret"


def test_postgres_cronjob_retries_only_what_may_pass(cronjob_pg: dict[str, Any]) -> None:
    rules = cronjob_pg["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    (rule,) = [r for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
    assert set(rule["onExitCodes"]["values"]) == FAILING


# --- Kubernetes: the plan as an Indexed Job -----------------------------------------------------
INDEXED = ROOT / "deploy" / "kubernetes" / "plan-indexed-job.yaml"
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
#: The oldest Kubernetes whose API has every field the manifests use (backoffLimitPerIndex and
#: the FailIndex action went GA in 1.33), and the newest the validator knows.
K8S_VERSIONS = ("1.33.0", "latest")


def _k8s_version(version: str) -> str:
    import kubernetes_validate

    return str(kubernetes_validate.latest_version()) if version == "latest" else version


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_for_its_api_version(path: Path, version: str) -> None:
    """Each resource against the OpenAPI schema of its apiVersion; unknown fields fail (strict)."""
    import kubernetes_validate

    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document:
            kubernetes_validate.validate(document, _k8s_version(version), strict=True)


def test_the_validator_refuses_an_unknown_field() -> None:
    """The check above is worth something: a misspelt field is an error, not ignored."""
    import kubernetes_validate

    job = indexed_documents()["Job/spotify-audience-sync-plan"]
    broken = {**job, "spec": {**job["spec"], "completionsMode": "Indexed"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, _k8s_version("latest"), strict=True)


def indexed_documents() -> dict[str, dict[str, Any]]:
    loaded = [d for d in yaml.safe_load_all(INDEXED.read_text(encoding="utf-8")) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in loaded}


def test_indexed_job_runs_one_sync_of_the_plan_per_index(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from spotify_audience_sync.sync.plan import parse_plan

    documents = indexed_documents()
    job = documents["Job/spotify-audience-sync-plan"]
    plan_text = documents["ConfigMap/spotify-audience-sync-plan"]["data"]["plan.yaml"]
    plan = parse_plan(plan_text, "ConfigMap plan.yaml")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == len(plan.syncs), "one index per sync of the plan"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith(IMAGE_SUFFIX)
    assert "command" not in container, "keep the image's ENTRYPOINT"
    args = container["args"]
    assert args[:2] == ["run", "/etc/spotify-audience-sync/plan.yaml"]
    assert args[2:] == ["--index", "$(JOB_COMPLETION_INDEX)"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/spotify-audience-sync"]["readOnly"] is True
    # What each index runs: the CLI itself says, from the same plan.
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text)
    for index, sync in enumerate(plan.syncs):
        result = CliRunner().invoke(main, ["run", str(path), "--list", "--index", str(index)])
        assert result.stdout == f"{sync.name}\n"
    for sync in plan.syncs:
        assert sync.database_url_env, "the database URL comes from the Secret, by name"


def test_indexed_job_keeps_state_in_postgresql_not_on_a_volume() -> None:
    documents = indexed_documents()
    assert not [key for key in documents if key.startswith("PersistentVolumeClaim/")]
    job = documents["Job/spotify-audience-sync-plan"]
    spec = job["spec"]["template"]["spec"]
    for volume in spec["volumes"]:
        assert set(volume) & {"configMap", "emptyDir"}, volume["name"]
    (container,) = spec["containers"]
    env = {v["name"]: v for v in container["env"]}
    assert "SPOTIFY_ADS_STATE_DIR" not in env
    state = env["SPOTIFY_ADS_STATE_URL"]["valueFrom"]["secretKeyRef"]
    assert state["name"] == container["envFrom"][0]["secretRef"]["name"]


def test_indexed_job_retries_per_index_only_what_may_pass() -> None:
    spec = indexed_documents()["Job/spotify-audience-sync-plan"]["spec"]
    assert 0 < spec["backoffLimitPerIndex"] <= 5
    rules = spec["podFailurePolicy"]["rules"]
    (rule,) = [r for r in rules if "onExitCodes" in r]
    assert rule["action"] == "FailIndex", "one sync failing for good leaves the others running"
    assert rule["onExitCodes"]["containerName"] == "sync"
    assert set(rule["onExitCodes"]["values"]) == FAILING


def test_the_plan_cronjob_wraps_the_indexed_job() -> None:
    documents = indexed_documents()
    job = documents["Job/spotify-audience-sync-plan"]
    cronjob = documents["CronJob/spotify-audience-sync-plan"]
    assert cronjob["spec"]["jobTemplate"]["spec"] == job["spec"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    security = job["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] == dockerfile_uid()


# --- hardening that every pod gets (#26.5) --------------------------------------------------------
def _pod_specs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod template in a workload document (Job, CronJob)."""
    if document.get("kind") == "CronJob":
        return [document["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if document.get("kind") == "Job":
        return [document["spec"]["template"]["spec"]]
    return []


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_no_pod_mounts_a_service_account_token_and_all_use_seccomp(path: Path) -> None:
    specs = [
        spec
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document
        for spec in _pod_specs(document)
    ]
    assert specs, f"no pod template in {path.name}"
    for spec in specs:
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_dag_pod_has_seccomp_and_no_service_account_token() -> None:
    keywords = dag_keywords()
    assert keywords["automount_service_account_token"] is False
    context = ast.unparse(keywords["security_context"])
    assert 'seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")' in context.replace(
        "'", '"'
    )
