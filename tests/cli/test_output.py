"""The run reporter: JSON lines a machine can parse, quiet and verbose, the right stream."""

from __future__ import annotations

import io
import json

from spotify_audience_sync.cli.output import Output
from spotify_audience_sync.errors import InputError


def make(
    fmt: str = "json", verbosity: int = 0, **kw: bool
) -> tuple[Output, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Output(fmt, verbosity, stdout=out, stderr=err, **kw), out, err  # type: ignore[arg-type]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_events_are_one_object_per_line_on_stdout() -> None:
    output, out, err = make()
    output.event("upload", audience_id="a1", bytes=10)
    output.summary("a human summary")
    (line,) = lines(out)
    assert line["event"] == "upload"
    assert line["level"] == "info"
    assert line["bytes"] == 10
    assert str(line["ts"]).endswith("Z")
    assert err.getvalue() == ""


def test_json_goes_to_stderr_when_stdout_carries_the_file() -> None:
    output, out, err = make(stdout_is_data=True)
    output.event("upload", bytes=1)
    assert out.getvalue() == ""
    assert lines(err)[0]["event"] == "upload"


def test_quiet_keeps_warnings_errors_and_the_result() -> None:
    output, out, _ = make(verbosity=-1)
    output.event("status", status="PROCESSING")
    output.event("retry", "warning", attempt=2)
    output.event("result", action="created")
    output.error(InputError("bad").to_dict())
    assert [line["event"] for line in lines(out)] == ["retry", "result", "error"]


def test_debug_events_only_when_verbose() -> None:
    quiet, out, _ = make()
    quiet.event("batch", "debug", rows=5)
    assert out.getvalue() == ""
    loud, out2, _ = make(verbosity=1)
    loud.event("batch", "debug", rows=5)
    assert lines(out2)[0]["rows"] == 5


def test_human_format_prints_summary_and_verbose_events_to_stderr() -> None:
    output, out, err = make("human", verbosity=1)
    output.event("status", status="BOOKABLE")
    output.summary("done")
    assert out.getvalue() == ""
    assert err.getvalue() == "· status status=BOOKABLE\ndone\n"


def test_human_quiet_prints_nothing_but_warnings() -> None:
    output, _, err = make("human", verbosity=-1)
    output.summary("done")
    output.event("status", status="BOOKABLE")
    output.event("slow", "warning", seconds=3)
    assert err.getvalue() == "warning slow seconds=3\n"


def test_auto_is_json_off_a_terminal() -> None:
    output, _, _ = make("auto")
    assert output.format == "json"


def test_phase_records_its_timing_as_a_debug_event() -> None:
    output, out, _ = make(verbosity=1)
    with output.phase("read") as update:
        update(100)
    (line,) = lines(out)
    assert line["event"] == "phase"
    assert line["phase"] == "read"
    assert line["rows"] == 100
