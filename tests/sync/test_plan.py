"""Plan validation: two syncs that would write one audience are refused before anything runs."""

from __future__ import annotations

import pytest

from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.sync.plan import check_distinct_audiences, parse_plan

A = "0b6f3a52-1d1c-4f3e-9d55-6f0a4c1e2b7d"
OTHER_ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


def plan(*syncs: str) -> str:
    return "syncs:\n" + "".join(syncs)


def sync(name: str, **fields: str) -> str:
    body = "".join(f"    {key}: {value!r}\n" for key, value in fields.items())
    return f"  - name: {name}\n    input: {name}.csv\n{body}"


@pytest.mark.parametrize(
    ("first", "second", "what"),
    [
        pytest.param(
            {"audience_name": "Churn"}, {"audience_name": "Churn"}, "named 'Churn'", id="name"
        ),
        pytest.param(
            {"audience_name": "Churn"}, {"audience_name": "Churn  "}, "named", id="name-spaces"
        ),
        pytest.param({"audience_id": A}, {"audience_id": A.upper()}, "audience id", id="id"),
    ],
)
def test_two_syncs_of_one_audience_are_refused_naming_both(
    first: dict[str, str], second: dict[str, str], what: str
) -> None:
    text = plan(sync("first", **first), sync("second", **second))
    with pytest.raises(ConfigError) as info:
        parse_plan(text, "plan.yaml")
    message = str(info.value)
    assert info.value.exit_code == 78
    assert "sync 'first' and sync 'second' both sync the audience" in message
    assert what in message


def test_one_name_in_two_ad_accounts_is_two_audiences() -> None:
    text = plan(
        sync("first", audience_name="Churn"),
        sync("second", audience_name="Churn", ad_account_id=OTHER_ACCOUNT),
    )
    assert len(parse_plan(text, "plan.yaml").syncs) == 2


def test_rendered_group_names_that_collide_are_refused_naming_both() -> None:
    claims = [
        ("sync 'eu' value 'DE'", "", "name", "Buyers DE"),
        ("sync 'de'", "", "name", "Buyers NL"),
        ("sync 'eu2' value 'DE '", "", "name", "Buyers DE"),
    ]
    with pytest.raises(ConfigError, match=r"sync 'eu' value 'DE' and sync 'eu2' value 'DE '"):
        check_distinct_audiences(claims)
    check_distinct_audiences(claims[:2])
