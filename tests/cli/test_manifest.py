"""The connector manifest (`spec`, connector.yaml) and `check` against the in-thread sandbox."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from pydantic import SecretStr

from spotify_audience_sync import __version__
from spotify_audience_sync.cli import connector as cli_connector
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.errors import EXIT_CODES
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.sandbox import FaultRule, Sandbox
from spotify_audience_sync.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR_YAML = ROOT / "connector.yaml"
REGENERATE = "run `uv run python scripts/write_connector_yaml.py`"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    result = CliRunner().invoke(main, ["spec"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


# --- spec ⇄ connector.yaml ⇄ code -------------------------------------------------------------
def test_connector_yaml_agrees_with_spec(manifest: dict[str, Any]) -> None:
    on_disk = yaml.safe_load(CONNECTOR_YAML.read_text(encoding="utf-8"))
    assert on_disk == manifest, f"connector.yaml disagrees with `spec`: {REGENERATE}"


def test_connector_yaml_is_exactly_what_the_script_writes() -> None:
    from conftest import load_script

    assert load_script("write_connector_yaml").render() == CONNECTOR_YAML.read_text(
        encoding="utf-8"
    ), REGENERATE


def test_manifest_names_the_version_image_and_mirror_mode(manifest: dict[str, Any]) -> None:
    assert manifest["name"] == "spotify-audience-sync"
    assert manifest["version"] == __version__
    assert manifest["image"].endswith(f"spotify-audience-sync:{__version__}")
    assert manifest["sync_modes"] == ["mirror"]
    assert manifest["entrypoint"] == ["spotify-audience-sync"]
    assert [t["type"] for t in manifest["identifier_types"]] == [t.value for t in IdentifierType]


def test_every_setting_is_in_the_schema_with_its_variable(manifest: dict[str, Any]) -> None:
    properties = manifest["settings"]["properties"]
    assert set(properties) == set(Settings.model_fields)
    for name, prop in properties.items():
        assert prop["x-env-var"] == env_name(name)
        assert prop.get("description"), f"{name}: add a docstring in settings.py"
    assert set(manifest["settings"]["required"]) <= set(properties)


def test_secrets_are_write_only_passwords(manifest: dict[str, Any]) -> None:
    properties = manifest["settings"]["properties"]
    secrets = {
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    }
    assert secrets >= {"client_secret", "refresh_token"}
    for name, prop in properties.items():
        assert prop.get("writeOnly", False) is (name in secrets), name
        if name in secrets:
            assert prop["format"] == "password"


def test_manifest_holds_nothing_from_this_machine(manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest)
    assert str(Path.home()) not in text
    assert "/tmp" not in text


def test_every_command_is_listed_with_its_help(manifest: dict[str, Any]) -> None:
    listed = {c["name"]: c["help"] for c in manifest["commands"]}
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        assert listed[name], name
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                assert f"{name} {sub}" in listed
    assert {"spec", "check", "sync", "prepare"} <= set(listed)


def test_exit_codes_hold_the_errors_and_the_sync_outcomes(manifest: dict[str, Any]) -> None:
    codes = {c["code"]: c for c in manifest["exit_codes"]}
    assert set(EXIT_CODES) | {3, 5} == set(codes)
    assert "EMPTY" in codes[3]["meaning"]
    assert "PROCESSING" in codes[5]["meaning"]
    assert [c for c, entry in codes.items() if entry["retryable"]] == [75, 130, 143]


def test_spec_output_is_valid_json_on_stdout_only() -> None:
    result = CliRunner().invoke(main, ["spec"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["version"] == __version__


# --- check ------------------------------------------------------------------------------------
def check() -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--log-format", "human"])
    return result.exit_code, result.stdout, result.stderr


def assert_no_secret(sandbox: Sandbox, *texts: str) -> None:
    secrets = [sandbox.config.client_secret, os.environ.get("SPOTIFY_ADS_REFRESH_TOKEN")]
    for text in texts:
        for secret in filter(None, secrets):
            assert secret not in text


def test_check_ok_prints_one_line_and_no_secret(env: Sandbox, tmp_path: Path) -> None:
    code, out, err = check()
    assert code == 0, err
    assert out == (
        "OK: settings valid, state dir writable, token obtained, ad account "
        f"{env.ad_account_id} (Sandbox ad account) readable (0 audiences seen)\n"
    )
    stored = json.loads((tmp_path / "tokens.json").read_text())
    assert_no_secret(env, out, err)
    assert stored["access_token"] not in out + err


def test_check_counts_the_audiences_it_can_see(env: Sandbox, make_csv: Any, upload: Any) -> None:
    for name in ("first", "second"):
        slot = env.audiences.new_upload(env.ad_account_id, env.base_url)
        assert upload(slot["upload_url"], make_csv(1200)).status_code == 200
        body = {
            "audience_type": "CUSTOM",
            "subtype": "CUSTOMER_LIST",
            "name": name,
            "audience_id": slot["id"],
        }
        env.audiences.create(env.ad_account_id, body)
    code, out, _ = check()
    assert code == 0
    assert "(2 audiences seen)" in out


def test_check_counts_one_audience_in_the_singular(
    env: Sandbox, make_csv: Any, upload: Any
) -> None:
    slot = env.audiences.new_upload(env.ad_account_id, env.base_url)
    assert upload(slot["upload_url"], make_csv(1200)).status_code == 200
    body = {"audience_type": "CUSTOM", "subtype": "CUSTOMER_LIST", "name": "only one"}
    env.audiences.create(env.ad_account_id, {**body, "audience_id": slot["id"]})
    code, out, _ = check()
    assert code == 0
    assert "(1 audience seen)" in out


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        pytest.param("SPOTIFY_ADS_AD_ACCOUNT_ID", "not-a-uuid", "must be a UUID", id="bad-uuid"),
        pytest.param("SPOTIFY_ADS_API_BASE_URL", "ftp://x", "http(s) URL", id="bad-url"),
        pytest.param("SPOTIFY_ADS_CLIENT_SECRET", None, "missing setting", id="missing-secret"),
        pytest.param("SPOTIFY_ADS_AD_ACCOUNT_ID", None, "missing setting", id="missing-account"),
    ],
)
def test_check_bad_setting_exits_78_naming_the_variable(
    env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    expected: str,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    code, out, err = check()
    assert code == 78, err
    assert out == ""
    assert variable in err
    assert expected in err
    assert_no_secret(env, err)


def test_check_unusable_state_dir_exits_78_before_any_request(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SPOTIFY_ADS_STATE_DIR", str(blocker / "state"))
    env.add_faults(FaultRule(route="token", status=503))  # would give 75 if it were reached
    code, out, err = check()
    assert code == 78, err
    assert out == ""
    assert "SPOTIFY_ADS_STATE_DIR" in err


def test_check_read_only_state_dir_exits_78(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(**_: object) -> None:
        raise PermissionError(13, "Permission denied")

    # chmod cannot stop root (tests may run as root), so the write itself is refused.
    monkeypatch.setattr(cli_connector.tempfile, "TemporaryFile", refuse)
    code, out, err = check()
    assert code == 78, err
    assert out == ""
    assert "is not writable (Permission denied)" in err
    assert "SPOTIFY_ADS_STATE_DIR" in err


def test_check_refused_refresh_token_exits_77(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_REFRESH_TOKEN", "not-a-token-the-sandbox-issued")
    code, out, err = check()
    assert code == 77, err
    assert out == ""
    assert "invalid_grant" in err
    assert "not-a-token-the-sandbox-issued" not in err


def test_check_without_any_login_exits_77(env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPOTIFY_ADS_REFRESH_TOKEN")
    code, _, err = check()
    assert code == 77
    assert "not logged in" in err
    assert "SPOTIFY_ADS_REFRESH_TOKEN" in err


def test_check_wrong_client_secret_exits_77(env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_CLIENT_SECRET", "wrong-secret-value")
    code, _, err = check()
    assert code == 77, err
    assert "wrong-secret-value" not in err


def test_check_unknown_ad_account_exits_78_naming_it(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ad account is read first (#23): an unknown one is a setting to fix (78), named."""
    account = str(uuid.uuid4())
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", account)
    code, out, err = check()
    assert code == 78, err
    assert out == ""
    assert f"ad account {account} does not exist" in err


def test_check_forbidden_exits_69(env: Sandbox) -> None:
    env.add_faults(FaultRule(route="batchGetAudiences", status=403))
    code, _, err = check()
    assert code == 69, err
    assert "HTTP 403" in err
    assert "Ads API terms" in err


def test_check_accounts_unavailable_exits_75(env: Sandbox) -> None:
    env.add_faults(FaultRule(route="token", status=503))
    code, out, err = check()
    assert code == 75, err
    assert out == ""
    assert "HTTP 503" in err


def test_check_rate_limited_for_too_long_exits_75(env: Sandbox) -> None:
    env.add_faults(FaultRule(route="batchGetAudiences", status=429, retry_after=3600))
    code, _, err = check()
    assert code == 75, err
    assert "asked to wait" in err
