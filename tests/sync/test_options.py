"""The option table: every option reaches the run from the environment, a plan and a flag alike.

One row per option of :data:`sync.options.OPTIONS`, one case per path it has: a new option that
misses a path (or a sample here) fails, so "settings ← plan fields ← flags" cannot drift again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest

from spotify_audience_sync.cli.sync import sync, sync_run
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.settings import env_name, load_settings
from spotify_audience_sync.sync.options import (
    OPTIONS,
    Option,
    SyncRun,
    plan_overrides,
    resolve_sync,
)
from spotify_audience_sync.sync.plan import PlanSync

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"
OTHER = "0b7e3c2a-1111-4000-8000-000000000002"
AUDIENCE = "6ba618ee-e901-4cdc-b405-58e3a4604380"


@dataclass(frozen=True)
class Case:
    """A sample value of an option on each path, and where it lands in the resolved run."""

    get: Callable[[SyncRun], Any]
    expected: Any
    env: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    flag: list[str] = field(default_factory=list)


def _column(kind: IdentifierType) -> Callable[[SyncRun], Any]:
    return lambda run: run.prepare.columns.get(kind)


GROUP = {"audience_column": "tier", "audience_name_template": "T {value}"}
GROUP_FLAGS = ["--audience-column", "tier", "--audience-name-template", "T {value}"]

CASES: dict[str, Case] = {
    "format": Case(lambda r: r.source.format, "ndjson", plan={"format": "ndjson"},
                   flag=["--format", "ndjson"]),
    "encoding": Case(lambda r: r.source.encoding, "cp1252", env="cp1252",
                     plan={"encoding": "cp1252"}, flag=["--encoding", "cp1252"]),
    "database_url": Case(lambda r: r.source.database_url, "duckdb:///w.db", env="duckdb:///w.db",
                         flag=["--database-url", "duckdb:///w.db"]),
    "email_column": Case(_column(IdentifierType.EMAIL), "E", plan={"email_column": "E"},
                         flag=["--email-column", "E"]),
    "phone_column": Case(_column(IdentifierType.PHONE), "P", plan={"phone_column": "P"},
                         flag=["--phone-column", "P"]),
    "device_id_column": Case(_column(IdentifierType.DEVICE_ID), "D",
                             plan={"device_id_column": "D"}, flag=["--device-id-column", "D"]),
    "default_region": Case(lambda r: r.prepare.normalize.default_region, "GB", env="gb",
                           plan={"default_region": "gb"}, flag=["--default-region", "gb"]),
    "gmail_canonical": Case(lambda r: r.prepare.normalize.gmail_canonical, True, env="true",
                            plan={"gmail_canonical": True}, flag=["--gmail-canonical"]),
    "phone_validation": Case(lambda r: r.prepare.normalize.phone_validation, "possible",
                             env="possible", plan={"phone_validation": "possible"},
                             flag=["--phone-validation", "possible"]),
    "layout": Case(lambda r: r.prepare.layout, "wide", env="wide", plan={"layout": "wide"},
                   flag=["--layout", "wide"]),
    "temp_dir": Case(lambda r: r.prepare.temp_dir, "/tmp/stage", env="/tmp/stage",
                     flag=["--temp-dir", "/tmp/stage"]),
    "max_reject_rate": Case(lambda r: (r.prepare.max_reject_rate, r.sync.max_reject_rate),
                            (0.25, 0.25), env="0.25", plan={"options": {"max_reject_rate": 0.25}},
                            flag=["--max-reject-rate", "0.25"]),
    "rejects_path": Case(lambda r: r.prepare.rejects_path, "r.csv", flag=["--rejects", "r.csv"]),
    "delimiter": Case(lambda r: r.source.delimiter, ";", env=";", plan={"delimiter": ";"},
                      flag=["--delimiter", ";"]),
    "country_column": Case(lambda r: r.prepare.normalize.country_column, "Land", env="Land",
                           plan={"country_column": "Land"}, flag=["--country-column", "Land"]),
    "consent_column": Case(lambda r: r.prepare.consent_column, "OK", env="OK",
                           plan={"consent_column": "OK"}, flag=["--consent-column", "OK"]),
    "exclude": Case(lambda r: r.exclude.paths, ("/lists/opt.csv",),
                    plan={"exclude": ["/lists/opt.csv"]}, flag=["--exclude", "/lists/opt.csv"]),
    "lookalike": Case(lambda r: r.sync.lookalike, True, env="true", plan={"lookalike": True},
                      flag=["--lookalike"]),
    "prune_orphans": Case(lambda r: r.service.prune_orphans, True, env="true",
                          flag=["--prune-orphans"]),
    "notify_url": Case(lambda r: r.service.notify_url, "https://hooks.example/x",
                       env="https://hooks.example/x", flag=["--notify-url", "https://hooks.example/x"]),
    "notify_on": Case(lambda r: r.service.notify_on, "always", env="always",
                      flag=["--notify-on", "always"]),
    "metrics_file": Case(lambda r: r.service.metrics_file, "/tmp/m.prom", env="/tmp/m.prom",
                         flag=["--metrics-file", "/tmp/m.prom"]),
    "pushgateway_url": Case(lambda r: r.service.pushgateway_url, "http://127.0.0.1:9091",
                            env="http://127.0.0.1:9091",
                            flag=["--pushgateway-url", "http://127.0.0.1:9091"]),
    "exclude_query": Case(lambda r: r.exclude.query, "SELECT email FROM optouts",
                          flag=["--exclude-query", "SELECT email FROM optouts"]),
    "ad_account_id": Case(lambda r: r.sync.ad_account_id, OTHER, env=OTHER,
                          plan={"ad_account_id": OTHER}, flag=["--ad-account-id", OTHER]),
    "audience_name": Case(lambda r: r.sync.audience_name, "Named", plan={"audience_name": "Named"},
                          flag=["--audience-name", "Named"]),
    "audience_id": Case(lambda r: r.sync.audience_id, AUDIENCE, plan={"audience_id": AUDIENCE},
                        flag=["--audience-id", AUDIENCE]),
    "description": Case(lambda r: r.sync.description, "why", plan={"description": "why"},
                        flag=["--description", "why"]),
    "dry_run": Case(lambda r: r.sync.dry_run, True, flag=["--dry-run"]),
    "wait": Case(lambda r: r.sync.wait, False, plan={"options": {"wait": False}},
                 flag=["--no-wait"]),
    "wait_timeout": Case(lambda r: r.sync.wait_timeout, 12.0, env="12",
                         plan={"options": {"wait_timeout": 12}}, flag=["--wait-timeout", "12"]),
    "allow_shrink": Case(lambda r: r.sync.allow_shrink, True,
                         plan={"options": {"allow_shrink": True}}, flag=["--allow-shrink"]),
    "force": Case(lambda r: r.sync.force, True, plan={"options": {"force": True}},
                  flag=["--force"]),
    "chunk_size": Case(lambda r: r.sync.chunk_size, 524288, env="524288",
                       flag=["--chunk-size", "524288"]),
    "audience_column": Case(lambda r: r.groups and r.groups.column, "tier", plan=GROUP,
                            flag=GROUP_FLAGS),
    "audience_name_template": Case(lambda r: r.groups and r.groups.template, "T {value}",
                                   plan=GROUP, flag=GROUP_FLAGS),
    "max_audiences": Case(lambda r: r.groups and r.groups.max_groups, 7,
                          plan={**GROUP, "options": {"max_audiences": 7}},
                          flag=[*GROUP_FLAGS, "--max-audiences", "7"]),
}  # fmt: skip

NAMES_AUDIENCE = ("audience_name", "audience_id", "audience_column", "audience_name_template")


def _paths() -> list[Any]:
    cases = []
    for option in OPTIONS:
        paths = [("env", option.setting), ("plan", option.plan), ("flag", option.flag)]
        cases += [
            pytest.param(option, path, id=f"{option.name}-{path}")
            for path, where in paths
            if where is not None
        ]
    return cases


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SPOTIFY_ADS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SPOTIFY_ADS_AD_ACCOUNT_ID", ACCOUNT)
    monkeypatch.chdir(tmp_path)  # no stray .env


def _from_flags(args: list[str]) -> SyncRun:
    """The run `sync` resolves from these flags: click's own parsing, then the command's code."""
    names = any(a in args for a in ("--audience-id", "--audience-column", "--audience-name"))
    base = ["in.csv", *([] if names else ["--audience-name", "Base"])]
    with click.Context(sync) as ctx:
        params = sync.make_context("sync", [*base, *args], parent=ctx).params
    for key in ("report_path", "quiet", "verbose"):
        params.pop(key)
    return sync_run(**params)[1]


def _from_plan(fields: dict[str, Any]) -> SyncRun:
    """The run a plan sync resolves to, as the plan runner resolves it."""
    raw: dict[str, Any] = {"name": "s", "input": "in.csv"}
    if not any(key in fields for key in NAMES_AUDIENCE):
        raw["audience_name"] = "Base"
    raw.update(fields)
    return resolve_sync(load_settings(), plan_overrides(PlanSync.model_validate(raw)))


def test_every_option_has_a_case_and_its_flag_and_plan_field_exist() -> None:
    assert set(CASES) == {option.name for option in OPTIONS}
    flags = {opt for param in sync.params for opt in param.opts}
    for option in OPTIONS:
        assert option.flag is None or option.flag in flags, option
        if option.plan is not None:
            model: Any = PlanSync
            for part in option.plan.split("."):
                assert part in model.model_fields, option
                model = model.model_fields[part].annotation


@pytest.mark.parametrize(("option", "path"), _paths())
def test_the_option_reaches_the_run(
    option: Option, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[option.name]
    if path == "env":
        assert option.setting is not None
        assert case.env is not None
        monkeypatch.setenv(env_name(option.setting), case.env)
        runs = [_from_flags([]), _from_plan({})]  # the command and a plan both see it
    elif path == "plan":
        runs = [_from_plan(case.plan)]
    else:
        runs = [_from_flags(case.flag)]
    for run in runs:
        assert case.get(run) == case.expected


def test_a_flag_beats_the_environment_and_a_plan_field_beats_it_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPOTIFY_ADS_DEFAULT_REGION", "FR")
    assert _from_flags(["--default-region", "DE"]).prepare.normalize.default_region == "DE"
    assert _from_plan({"default_region": "DE"}).prepare.normalize.default_region == "DE"
    assert _from_plan({}).prepare.normalize.default_region == "FR"


@pytest.mark.parametrize("path", ["plan", "flag"])
def test_several_columns_of_a_type_reach_the_run(path: str) -> None:
    """A repeated column flag, or a list in a plan, keeps every column in order."""
    run = (
        _from_plan({"phone_column": ["Phone", "Mobile"]})
        if path == "plan"
        else _from_flags(["--phone-column", "Phone", "--phone-column", "Mobile"])
    )
    assert run.prepare.columns[IdentifierType.PHONE] == ["Phone", "Mobile"]
