"""Suppression lists: normalized and hashed like the segment, subtracted per partition."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.segment.suppression import Suppression, build_suppression


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _segment(tmp_path: Path) -> Path:
    src = tmp_path / "segment.csv"
    rows = [f"user{i}@example.com,+1 201 555 01{i:02d}" for i in range(50)]
    src.write_text("email,phone\n" + "\n".join(rows) + "\n", "utf-8")
    return src


def _run(segment: Path, *lists: Path) -> tuple[set[str], dict[str, int | None]]:
    sources = [open_source(str(p)) for p in lists]
    try:
        suppression = build_suppression(sources, NormalizeOptions())
    finally:
        for source in sources:
            source.close()
    try:
        with open_source(str(segment)) as source:
            options = PrepareOptions(suppression=suppression)
            with prepare_segment(source, options) as prepared:
                out = io.BytesIO()
                prepared.write_to(out)
                report = prepared.report
    finally:
        suppression.close()
    counts = {k: c.suppressed for k, c in report.identifiers.items()}
    return {line.split(",")[1] for line in out.getvalue().decode().splitlines()[1:]}, counts


def test_raw_values_in_any_format_are_normalized_like_the_segment(tmp_path: Path) -> None:
    opt_out = tmp_path / "opt_out.csv"
    opt_out.write_text(
        "Mail;Telefon\n USER1@Example.com ;(201) 555-0102\nuser3@example.com;\n", "utf-8"
    )
    got, counts = _run(_segment(tmp_path), opt_out)
    gone = {_sha("user1@example.com"), _sha("user3@example.com"), _sha("+12015550102")}
    assert not gone & got
    assert len(got) == 100 - 3
    assert counts == {"email": 2, "phone": 1}


def test_digests_and_type_value_files(tmp_path: Path) -> None:
    hashed = tmp_path / "hashed.csv"
    hashed.write_text(f"email_sha256\n{_sha('user4@example.com').upper()}\n", "utf-8")
    typed = tmp_path / "typed.csv"
    typed.write_text(
        f"type,value\nPHONE_NUMBER_SHA256,{_sha('+12015550105')}\nphone,+1 201 555 0106\n",
        "utf-8",
    )
    got, counts = _run(_segment(tmp_path), hashed, typed)
    assert _sha("user4@example.com") not in got
    assert {_sha("+12015550105"), _sha("+12015550106")}.isdisjoint(got)
    assert counts == {"email": 1, "phone": 2}


def test_a_list_of_an_unknown_type_is_refused(tmp_path: Path) -> None:
    typed = tmp_path / "typed.csv"
    typed.write_text("type,value\nfax,123\n", "utf-8")
    with pytest.raises(InputError, match="unknown identifier type 'fax'"):
        _run(_segment(tmp_path), typed)


def test_subtract_is_exact_within_a_partition() -> None:
    """Digests that share a partition (first byte) but differ later are kept."""
    rng = np.random.default_rng(1)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    records = hexdigits[rng.integers(0, 16, size=(2000, 64))]
    records[:, :2] = ord("a")  # one partition
    suppression = Suppression()
    try:
        suppression.add(IdentifierType.EMAIL, records[::2])
        kept, removed = suppression.subtract(0, records)
        assert removed == 1000
        assert (kept == records[1::2]).all()
        assert suppression.subtract(1, records)[1] == 0  # phones: another type's list
    finally:
        suppression.close()


def test_digests_that_share_their_first_sixteen_digits_are_told_apart() -> None:
    """The sort key is the first 16 hex digits; equal keys are compared in full."""
    rng = np.random.default_rng(2)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    records = hexdigits[rng.integers(0, 16, size=(300, 64))]
    records[:, :16] = records[0, :16]  # one key for all
    suppression = Suppression()
    try:
        suppression.add(IdentifierType.PHONE, records[:100])
        kept, removed = suppression.subtract(1, records)
        assert removed == 100
        assert (kept == records[100:]).all()
    finally:
        suppression.close()
