"""The public surface: every name in __all__ resolves, and importing the package stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import spotify_audience_sync


def test_every_public_name_resolves() -> None:
    for name in spotify_audience_sync.__all__:
        assert getattr(spotify_audience_sync, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        spotify_audience_sync.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_imports_no_heavy_library() -> None:
    code = (
        "import sys, spotify_audience_sync.cli\n"
        "heavy = {'polars', 'numpy', 'authlib', 'httpx2', 'phonenumbers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
