"""One read, many segments: each group's file is exactly what its rows alone would make."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from spotify_audience_sync.errors import ConfigError, InputError
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.segment.split import Split, prepare_split


def _rows(n: int) -> list[tuple[str, str, str]]:
    tiers = "abc"
    return [(f"p{i}@example.com", f"+1 212 {2000000 + i}", tiers[(i * 7) % 3]) for i in range(n)]


def _csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("email,phone,tier\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("layout", ["type-value", "wide"])
def test_each_group_equals_a_prepare_of_its_rows_alone(tmp_path: Path, layout: str) -> None:
    rows = _rows(20_000) + _rows(500)  # duplicates too
    options = PrepareOptions(layout=layout)  # type: ignore[arg-type]
    with open_source(str(_csv(tmp_path / "all.csv", rows))) as source:
        (groups,) = prepare_split(source, [Split(options, "tier")])
    assert sorted(groups) == ["a", "b", "c"]
    for tier, prepared in groups.items():
        alone = _csv(tmp_path / f"{tier}.csv", [r for r in rows if r[2] == tier])
        with open_source(str(alone)) as source, prepare_segment(source, options) as expected:
            # The same fingerprint: switching to --audience-column skips unchanged audiences.
            assert prepared.finalize() == expected.finalize()
            want, got = io.BytesIO(), io.BytesIO()
            expected.write_to(want)
            with prepared:
                prepared.write_to(got)
            assert got.getvalue() == want.getvalue()


def test_two_consumers_share_one_read(tmp_path: Path) -> None:
    path = _csv(tmp_path / "all.csv", _rows(3000))
    with open_source(str(path)) as source:
        split, whole = prepare_split(
            source, [Split(PrepareOptions(), "tier"), Split(PrepareOptions())]
        )
    assert sum(p.report.rows_read for p in split.values()) == whole[None].report.rows_read == 3000
    for prepared in [*split.values(), *whole.values()]:
        prepared.close()


def test_too_many_groups_and_missing_values_are_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path / "all.csv", _rows(30))
    with open_source(str(path)) as source, pytest.raises(ConfigError, match="more than 2"):
        prepare_split(source, [Split(PrepareOptions(), "tier", max_groups=2)])
    blank = tmp_path / "blank.csv"
    blank.write_text("email,tier\na@example.com,\n")
    with open_source(str(blank)) as source, pytest.raises(InputError, match="no value"):
        prepare_split(source, [Split(PrepareOptions(), "tier")])
    with open_source(str(path)) as source, pytest.raises(InputError, match="no audience column"):
        prepare_split(source, [Split(PrepareOptions(), "segment")])


@pytest.mark.parametrize("layout", ["type-value", "wide"])
def test_a_cell_of_several_emails_stays_in_its_group(tmp_path: Path, layout: str) -> None:
    """Hashed once, then split by row: a cell's second address goes with its row's group."""
    rows = [
        (f"p{i}@example.com;q{i}@example.com" if i % 3 else f"p{i}@example.com", "", "ab"[i % 2])
        for i in range(300)
    ]
    options = PrepareOptions(layout=layout)  # type: ignore[arg-type]
    with open_source(str(_csv(tmp_path / "all.csv", rows))) as source:
        (groups,) = prepare_split(source, [Split(options, "tier")])
    for tier, prepared in groups.items():
        alone = _csv(tmp_path / f"{tier}.csv", [r for r in rows if r[2] == tier])
        with open_source(str(alone)) as source, prepare_segment(source, options) as expected:
            assert prepared.finalize() == expected.finalize()
            email = prepared.report.identifiers["email"]
            assert email.hashed == expected.report.identifiers["email"].hashed == 250
        prepared.close()


@pytest.mark.parametrize("column", ["email", "EMAIL", "phone"])
def test_an_identifier_column_cannot_name_audiences(tmp_path: Path, column: str) -> None:
    path = _csv(tmp_path / "all.csv", _rows(5))
    with open_source(str(path)) as source, pytest.raises(InputError) as info:
        prepare_split(source, [Split(PrepareOptions(), column)])
    assert info.value.exit_code == 65
    assert "identifier column: its values are personal data" in str(info.value)
    assert "example.com" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "what"),
    [
        pytest.param("someone@example.com", "an email address", id="email"),
        pytest.param("+1 (212) 555-0134", "a phone number", id="phone"),
        pytest.param("2125550134", "a phone number", id="phone-digits"),
        pytest.param("3F1D8C2E-5B6A-4C7D-9E8F-0A1B2C3D4E5F", "a device id", id="idfa"),
        pytest.param("ab" * 32, "a hashed identifier", id="sha256"),
    ],
)
def test_a_column_whose_values_look_like_identifiers_is_refused_unshown(
    tmp_path: Path, value: str, what: str
) -> None:
    path = tmp_path / "seg.csv"
    path.write_text(f'email,contact\na@example.com,gold\nb@example.com,"{value}"\n')
    with open_source(str(path)) as source, pytest.raises(InputError) as info:
        prepare_split(source, [Split(PrepareOptions(), "contact")])
    assert f"looks like {what}" in str(info.value)
    assert value not in str(info.value)


@pytest.mark.parametrize("value", ["gold", "DE", "2024-Q3", "tier 3", "123456"])
def test_segment_like_values_still_group(tmp_path: Path, value: str) -> None:
    path = tmp_path / "seg.csv"
    path.write_text(f"email,segment\na@example.com,{value}\n")
    with open_source(str(path)) as source:
        (groups,) = prepare_split(source, [Split(PrepareOptions(), "segment")])
    assert list(groups) == [value]
    for prepared in groups.values():
        prepared.close()


FD_SCRIPT = """
import resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
from spotify_audience_sync.errors import ConfigError
from spotify_audience_sync.segment.pipeline import PrepareOptions
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.segment.split import Split, prepare_split
try:
    with open_source(sys.argv[1]) as source:
        results = prepare_split(source, [Split(PrepareOptions()) for _ in range(12)])
except ConfigError as exc:
    print("ConfigError", exc.exit_code, exc)
    sys.exit(0)
lines = set()
for (_, prepared), in (r.items() for r in results):
    with prepared:
        lines.add(b"".join(prepared.chunks()))
print("ok", len(results), len(lines))
"""


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(256, "ok 12 1", id="12-syncs-under-256"),
        pytest.param(16, "ConfigError 78", id="too-low-is-named"),
    ],
)
def test_twelve_syncs_of_one_read_fit_in_256_descriptors(
    tmp_path: Path, limit: int, expected: str
) -> None:
    """A plan of ten syncs of one CSV ran out of descriptors at `ulimit -n 1024` (64 files
    per type per sync held open); a limit that is truly too low is a ConfigError naming it."""
    import subprocess
    import sys

    path = tmp_path / "seg.csv"
    path.write_text(
        "email,phone,device_id\n"
        + "".join(
            f"p{i}@example.com,+1 212 555 {i:04d},{i:08x}-1111-4111-8111-111111111111\n"
            for i in range(3000)
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", FD_SCRIPT, str(path), str(limit)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(expected), done.stdout
    if expected.startswith("ConfigError"):
        assert "RLIMIT_NOFILE" in done.stdout
        assert f"({limit})" in done.stdout
