"""The Python API against the in-thread sandbox: a DataFrame and a LazyFrame synced in-process.

The same Job as the CLI: exact membership (what the sandbox received is the prepared file),
the second call of an unchanged segment skipped, a history row per call, no value in an event.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import spotify_audience_sync
from spotify_audience_sync.errors import SafetyError
from spotify_audience_sync.sandbox import Sandbox
from spotify_audience_sync.sandbox.segment import generate
from spotify_audience_sync.segment.frames import open_frame
from spotify_audience_sync.sync.backend import open_state
from spotify_audience_sync.sync.events import JobEvent


def _rows(path: Path) -> set[tuple[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)  # the header
        return {(kind, value) for kind, value in reader}


def _frame() -> pl.DataFrame:
    return generate(3000, seed=11).select("Email", "phone")


@pytest.mark.parametrize("lazy", [False, True], ids=["DataFrame", "LazyFrame"])
def test_a_frame_syncs_exactly_and_an_unchanged_one_is_skipped(
    env: Sandbox, tmp_path: Path, lazy: bool
) -> None:
    frame = _frame()
    source: pl.DataFrame | pl.LazyFrame = frame.lazy() if lazy else frame
    events: list[JobEvent] = []
    name = f"API {'lazy' if lazy else 'eager'}"

    report = spotify_audience_sync.sync_audience(
        source, audience_name=name, default_region="US", wait_timeout=30, events=events.append
    )

    assert report.action == "created"
    assert report.status == "BOOKABLE"
    assert report.audience_id is not None
    expected = spotify_audience_sync.prepare(frame, tmp_path / "expected.csv")
    assert report.identifiers == expected.rows_written
    assert set(env.membership(report.audience_id)) == _rows(tmp_path / "expected.csv")
    assert len(env.membership(report.audience_id)) == report.identifiers
    again = spotify_audience_sync.sync_audience(source, audience_name=name)
    assert again.action == "skipped"
    assert again.audience_id == report.audience_id
    with open_state(str(tmp_path / "state")) as backend:
        history = backend.history(env.ad_account_id, name, 10)
    assert [run.action for run in history] == ["skipped", "created"]
    text = json.dumps([(e.name, e.fields, e.labels) for e in events], default=str)
    emails = [e.strip() for e in frame["Email"].drop_nulls().to_list() if "@" in e]
    assert len(emails) > 1000
    for email in emails:
        assert email not in text
    assert {"columns", "prepared", "upload", "created", "status"} <= {e.name for e in events}


def test_the_guards_hold_for_a_frame(env: Sandbox) -> None:
    small = _frame().head(50)
    with pytest.raises(SafetyError, match=r"only .* identifiers"):
        spotify_audience_sync.sync_audience(small, audience_name="API small")
    assert env.audiences.list(env.ad_account_id, {})["audiences"] == []


def test_an_unknown_option_is_a_type_error(env: Sandbox) -> None:
    with pytest.raises(TypeError, match="defualt_region"):
        spotify_audience_sync.sync_audience(_frame(), audience_name="x y", defualt_region="US")


def test_options_by_the_settings_names_reach_the_pipeline(env: Sandbox, tmp_path: Path) -> None:
    frame = pl.DataFrame({"phone": ["020 7946 0018", "(415) 555-0123"]})
    report = spotify_audience_sync.prepare(frame, tmp_path / "gb.csv", default_region="GB")
    assert report.options["default_region"] == "GB"
    assert report.rows_written == 1  # the London number; the US one is not valid in GB


def _arrow_sources(frame: pl.DataFrame) -> list[Any]:
    table = frame.to_arrow()

    class Stream:  # any object with the Arrow C stream interface
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return table.__arrow_c_stream__(requested_schema)

    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return [table, reader, Stream()]


def test_every_kind_of_frame_reads_in_bounded_batches_of_text() -> None:
    frame = pl.DataFrame({"email": [f"p{i}@example.com" for i in range(25)], "n": range(25)})
    for source in [frame, frame.lazy(), *_arrow_sources(frame)]:
        opened = open_frame(source, batch_rows=10)
        batches = [batch() for batch in opened.deferred_batches(["email", "n"])]
        assert all(b.height <= 10 for b in batches), type(source)
        joined = pl.concat(batches)
        assert joined.schema == pl.Schema({"email": pl.String, "n": pl.String})
        assert joined["n"].to_list() == [str(i) for i in range(25)]


def test_pandas_frames_are_read_when_pandas_is_installed(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")  # never a dependency: tested where it is installed
    frame = pandas.DataFrame({"email": [f"p{i}@example.com" for i in range(5)]})
    report = spotify_audience_sync.prepare(frame, tmp_path / "out.csv")
    assert report.rows_written == 5


def test_a_lazy_frame_is_never_collected_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("collected whole")

    monkeypatch.setattr(pl.LazyFrame, "collect", refuse)
    lazy = pl.LazyFrame({"email": [f"p{i}@example.com" for i in range(30)]})
    batches = list(open_frame(lazy, batch_rows=8).batches(["email"]))
    assert sum(b.height for b in batches) == 30
