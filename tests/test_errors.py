"""The error hierarchy: exit codes are distinct and retryability belongs to the type."""

from __future__ import annotations

import pytest

from spotify_audience_sync import errors


def _error_types() -> list[type[errors.SyncError]]:
    return [
        value
        for name in errors.__all__
        if isinstance(value := getattr(errors, name), type) and issubclass(value, errors.SyncError)
    ]


def _leaf_types() -> list[type[errors.SyncError]]:
    """Every error type with its own exit code (OutcomeUnknownError shares TransientError's)."""
    shared = (errors.OutcomeUnknownError, errors.UploadSessionLostError)
    return [cls for cls in _error_types() if cls not in shared]


def test_every_error_type_has_its_own_exit_code() -> None:
    codes = [cls.exit_code for cls in _leaf_types()]
    assert len(codes) == len(set(codes))


def test_the_error_types_are_all_listed() -> None:
    assert len(_error_types()) == 15


def test_outcome_unknown_is_a_transient_error_with_its_own_type() -> None:
    error = errors.OutcomeUnknownError("create audience: HTTP 503", status=503, method="POST")
    assert isinstance(error, errors.TransientError)
    assert error.exit_code == errors.TransientError.exit_code
    assert error.to_dict() == {
        "error": "OutcomeUnknownError",
        "message": "create audience: HTTP 503",
        "exit_code": 75,
        "retryable": True,
        "status": 503,
        "method": "POST",
        "outcome": "unknown",
    }


def test_remote_error_to_dict_keeps_status_trace_id_and_codes() -> None:
    error = errors.RemoteError("no", status=400, trace_id="abc", codes=("BAD_NAME",))
    assert error.to_dict() == {
        "error": "RemoteError",
        "message": "no",
        "exit_code": 69,
        "retryable": False,
        "status": 400,
        "trace_id": "abc",
        "codes": ["BAD_NAME"],
    }


def test_to_dict_leaves_out_unknown_details() -> None:
    assert errors.RemoteError("no").to_dict() == {
        "error": "RemoteError",
        "message": "no",
        "exit_code": 69,
        "retryable": False,
    }
    assert errors.TransientError("later").to_dict()["retryable"] is True


def test_the_exit_table_has_each_code_once_with_the_sync_outcomes() -> None:
    codes = [row.code for row in errors.EXIT_TABLE]
    assert len(codes) == len(set(codes))
    assert {errors.EXIT_EMPTY, errors.EXIT_STILL_PROCESSING, 0, 1, 2} <= set(codes)
    retryable = {row.code for row in errors.EXIT_TABLE if row.retryable}
    assert retryable == {cls.exit_code for cls in _leaf_types() if cls.retryable} | {130, 143}


def test_every_exit_code_is_documented() -> None:
    for cls in _leaf_types():
        assert cls.exit_code in errors.EXIT_CODES, cls.__name__


@pytest.mark.parametrize("cls", _leaf_types(), ids=lambda c: c.__name__)
def test_only_transient_errors_are_retryable(cls: type[errors.SyncError]) -> None:
    assert cls.retryable is issubclass(cls, errors.TransientError)
