"""The error hierarchy: exit codes are distinct and retryability belongs to the type."""

from __future__ import annotations

import pytest

from spotify_audience_sync import errors


def _leaf_types() -> list[type[errors.SyncError]]:
    return [getattr(errors, name) for name in errors.__all__ if name != "EXIT_CODES"]


def test_every_error_type_has_its_own_exit_code() -> None:
    codes = [cls.exit_code for cls in _leaf_types()]
    assert len(codes) == len(set(codes))


def test_every_exit_code_is_documented() -> None:
    for cls in _leaf_types():
        assert cls.exit_code in errors.EXIT_CODES, cls.__name__


@pytest.mark.parametrize("cls", _leaf_types(), ids=lambda c: c.__name__)
def test_only_transient_errors_are_retryable(cls: type[errors.SyncError]) -> None:
    assert cls.retryable is issubclass(cls, errors.TransientError)
