"""Audience names: stripped, never blank, and namesakes that differ in case or spaces named."""

from __future__ import annotations

from typing import Any

import pytest

from spotify_audience_sync.errors import UsageError
from spotify_audience_sync.spotify.models import Audience
from spotify_audience_sync.sync.mirror import SyncOptions, validate_options
from spotify_audience_sync.sync.names import check_name, clean_name, near_misses

ACCOUNT = "5a1d8c9e-0000-4000-8000-000000000001"


def audience(name: str, number: int) -> Audience:
    fields: dict[str, Any] = {"id": f"00000000-0000-4000-8000-{number:012d}", "name": name}
    return Audience.model_validate(fields)


def test_surrounding_whitespace_is_not_part_of_a_name() -> None:
    assert clean_name("  NU 200k \t") == "NU 200k"
    assert clean_name(None) is None
    assert SyncOptions(ACCOUNT, audience_name=" NU 200k ").audience_name == "NU 200k"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("   ", "--audience-name is blank", id="spaces"),
        pytest.param("", "--audience-name is blank", id="empty"),
        pytest.param(" x ", "--audience-name must be 2 to 80 characters", id="short"),
        pytest.param("n" * 81, "--audience-name must be 2 to 80 characters", id="long"),
    ],
)
def test_blank_and_out_of_range_names_are_usage_errors(name: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        validate_options(SyncOptions(ACCOUNT, audience_name=name))
    assert str(refused.value) == message
    assert refused.value.exit_code == 2
    with pytest.raises(UsageError):
        check_name(name)


def test_namesakes_that_differ_only_in_case_or_spaces_are_near_misses() -> None:
    listed = [
        audience("nu 200k", 1),
        audience("NU 200k ", 2),
        audience("Nu 200K", 3),
        audience("nu 200k old", 4),
        audience("nu  200k", 5),
    ]
    assert [a.id[-1] for a in near_misses("nu 200k", listed)] == ["2", "3"]
