"""`run PLAN`: plan validation, selection, one read per query, --parallel, the worst exit code."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import PG_BASE, pg_execute, require_postgres
from spotify_audience_sync.cli.main import main
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.segment import split as split_module
from spotify_audience_sync.sync.plan import parse_plan

PG_URL = PG_BASE


_execute = pg_execute


@pytest.fixture(scope="module")
def churn_table() -> Iterator[str]:
    """3,000 people in tiers a/b/c (1,000 each), with phones; dropped at teardown."""
    require_postgres()  # the machine and CI have it: fail, never skip
    name = f"sas_churn_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _execute(
        PG_URL,
        f"""CREATE TABLE {name} AS
        SELECT i AS id, 'churn' || i || '@example.com' AS email,
          '+1 415 555 ' || lpad(i::text, 4, '0') AS phone,
          (ARRAY['a', 'b', 'c'])[1 + i % 3] AS tier
        FROM generate_series(0, 2999) AS i""",
    )
    yield name
    _execute(PG_URL, f"DROP TABLE IF EXISTS {name}")


def invoke(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, ["--debug", "run", *args, "--log-format", "json"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def write_plan(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_file_sync_and_two_query_syncs_run_two_at_once(
    env: Sandbox, tmp_path: Path, churn_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", PG_URL)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "gold.csv").write_text(
        "email\n" + "".join(f"gold{i}@example.com\n" for i in range(1500))
    )
    reads: list[str] = []
    real = split_module.prepare_split

    def counting(source: Any, splits: Any, **kwargs: Any) -> Any:
        reads.append(source.name)
        return real(source, splits, **kwargs)

    monkeypatch.setattr("spotify_audience_sync.sync.runner.prepare_split", counting)
    query = f"SELECT email, phone, tier FROM {churn_table}"
    plan = write_plan(
        tmp_path / "plan.yaml",
        f"""
syncs:
  - name: gold-customers
    input: exports/gold.csv
    audience_name: Gold customers
    default_region: GB
  - name: churn-risk
    query: {query}
    database_url_env: WAREHOUSE_URL
    audience_column: tier
    audience_name_template: "Churn {{value}}"
  - name: churn-all
    query: {query}
    database_url_env: WAREHOUSE_URL
    audience_name: Churn everyone
    email_column: email
    options:
      force: true
""",
    )
    code, lines, stderr = invoke(str(plan), "--parallel", "2")
    assert code == 0, stderr
    assert len(reads) == 2, "the two syncs of one query share one read"
    final = lines[-1]
    assert final["event"] == "result"
    assert final["command"] == "run"
    syncs = {s["name"]: s for s in final["syncs"]}
    assert list(syncs) == ["gold-customers", "churn-risk", "churn-all"]
    (gold,) = syncs["gold-customers"]["audiences"]
    assert gold["sync"]["action"] == "created"
    assert len(env.membership(gold["sync"]["audience_id"])) == 1500
    tiers = {a["value"]: a["sync"] for a in syncs["churn-risk"]["audiences"]}
    assert sorted(tiers) == ["a", "b", "c"]
    for tier, sync in tiers.items():
        assert sync["audience_name"] == f"Churn {tier}"
        assert len(env.membership(sync["audience_id"])) == 2000  # 1,000 emails + 1,000 phones
    (everyone,) = syncs["churn-all"]["audiences"]
    assert len(env.membership(everyone["sync"]["audience_id"])) == 6000
    results = [line for line in lines if line["event"] == "sync_result"]
    assert [r["sync_name"] for r in results] == ["gold-customers", "churn-risk", "churn-all"]

    # Again: nothing changed, so everything is skipped, except the forced one.
    code, lines, _ = invoke(str(plan), "--parallel", "2", "--only", "churn-risk")
    assert code == 0
    (risk,) = lines[-1]["syncs"]
    assert {a["sync"]["action"] for a in risk["audiences"]} == {"skipped"}


def test_a_plan_error_names_the_sync_and_the_field(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
syncs:
  - name: fine
    input: a.csv
    audience_name: Fine one
  - name: churn-risk
    query: SELECT email FROM marts.churn
    database_url_env: postgresql://user:secret@host/db
    audience_name: Churn
""",
    )
    code, _, stderr = invoke(str(plan))
    assert code == 78
    assert "sync 'churn-risk' (syncs[1]), field 'database_url_env': String should match" in stderr
    assert "secret" not in stderr


def test_a_plan_without_an_audience_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        Exception, match=r"sync 'x' \(syncs\[0\]\): name the audience with 'audience_name'"
    ):
        parse_plan("syncs: [{name: x, input: a.csv}]", "plan.yaml")


def test_unknown_fields_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"sync 'x' \(syncs\[0\]\), field 'audeince_name'"):
        parse_plan("syncs: [{name: x, input: a.csv, audeince_name: y}]", "plan.yaml")


def test_list_prints_the_names_for_orchestrators(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
syncs:
  - {name: one, input: a.csv, audience_name: One}
  - {name: two, input: b.csv, audience_name: Two}
""",
    )
    result = CliRunner().invoke(main, ["run", str(plan), "--list", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == ["one", "two"]
    result = CliRunner().invoke(main, ["run", str(plan), "--list", "--index", "1"])
    assert result.stdout == "two\n"
    result = CliRunner().invoke(main, ["run", str(plan), "--list", "--index", "2"])
    assert result.exit_code == 78
    assert "--index 2: the plan has syncs 0 to 1" in result.stderr
    result = CliRunner().invoke(main, ["run", str(plan), "--list", "--only", "three"])
    assert result.exit_code == 78
    assert "--only three: no such sync" in result.stderr


def test_a_failing_sync_does_not_stop_the_others(env: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text(
        "email\n" + "".join(f"ok{i}@example.com\n" for i in range(1000))
    )
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
syncs:
  - {name: missing, input: missing.csv, audience_name: Missing one}
  - {name: ok, input: ok.csv, audience_name: Fine one}
""",
    )
    code, lines, _ = invoke(str(plan))
    assert code == 66
    syncs = {s["name"]: s for s in lines[-1]["syncs"]}
    assert syncs["missing"]["exit_code"] == 66
    assert syncs["ok"]["exit_code"] == 0
    assert syncs["ok"]["audiences"][0]["sync"]["action"] == "created"


def test_a_plan_sync_with_export_fields(env: Sandbox, tmp_path: Path) -> None:
    """delimiter (sniffed), several phone columns as a list, consent_column and exclude."""
    rows = [
        f"{i};kunde{i}@example.com;+1 415 555 {i:04d};+1 415 555 {2000 + i:04d};"
        + ("no" if i == 9 else "yes")
        for i in range(600)
    ]
    (tmp_path / "kunden.csv").write_text(
        "Kundennummer;E-Mail;Telefon;Mobil;Einwilligung\n" + "\n".join(rows) + "\n"
    )
    (tmp_path / "opt_outs.csv").write_text("type,value\nemail,KUNDE0@example.com\n")
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
syncs:
  - name: kunden
    input: kunden.csv
    audience_name: Kunden
    phone_column: [Telefon, Mobil]
    consent_column: Einwilligung
    exclude: [opt_outs.csv]
""",
    )
    code, lines, stderr = invoke(str(plan))
    assert code == 0, json.dumps(lines[-1]) + stderr
    (sync,) = lines[-1]["syncs"]
    (audience,) = sync["audiences"]
    # 599 consenting rows: 598 emails (one excluded) and 2 x 599 phones.
    assert len(env.membership(audience["sync"]["audience_id"])) == 598 + 1198
    email = audience["prepare"]["identifiers"]["email"]
    assert (email["suppressed"], audience["prepare"]["no_consent"]) == (1, 1)


def test_a_plan_honours_the_encoding_setting_and_its_own_field(
    env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: plan runs read every file as UTF-8 whatever SPOTIFY_ADS_ENCODING said."""
    text = "email\n" + "".join(f"j\u00f6rg{i}@example.com\n" for i in range(1200))
    (tmp_path / "cp.csv").write_bytes(text.encode("cp1252"))
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    plan = write_plan(
        tmp_path / "plan.yaml",
        """
syncs:
  - {name: by-setting, input: cp.csv, audience_name: By setting}
  - {name: by-field, input: latin.csv, audience_name: By field, encoding: latin-1}
""",
    )
    monkeypatch.setenv("SPOTIFY_ADS_ENCODING", "cp1252")
    code, lines, stderr = invoke(str(plan), "--dry-run")
    assert code == 0, stderr
    for sync in lines[-1]["syncs"]:
        (audience,) = sync["audiences"]
        assert audience["prepare"]["identifiers"]["email"]["written"] == 1200, sync["name"]
        assert audience["sync"]["action"] == "would create"


def test_a_group_rendering_another_syncs_name_is_refused_before_it_writes(
    env: Sandbox, tmp_path: Path
) -> None:
    """Issue 20 item 10: a group of one sync renders the name another sync writes."""
    (tmp_path / "tiers.csv").write_text(
        "email,tier\n" + "".join(f"t{i}@example.com,{'ab'[i % 2]}\n" for i in range(2400))
    )
    (tmp_path / "vip.csv").write_text(
        "email\n" + "".join(f"v{i}@example.com\n" for i in range(1200))
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "syncs:\n"
        "  - {name: vip, input: vip.csv, audience_name: Tier a}\n"
        "  - {name: tiers, input: tiers.csv, audience_column: tier,"
        " audience_name_template: 'Tier {value}'}\n"
    )
    code, lines, stderr = invoke(str(plan))
    assert code == 78, stderr
    failed = {s["name"]: s for s in lines[-1]["syncs"]}
    message = failed["tiers"]["error"]["message"]
    assert "sync 'vip'" in message
    assert "sync 'tiers' value 'a'" in message
    names = {a["name"] for a in env.audiences.list(env.ad_account_id, {})["audiences"]}
    assert names == {"Tier a"}  # only the first writer's audience exists
