"""What `prepare` says about its input: column names people use, and never a value from it."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spotify_audience_sync.cli.main import main


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["prepare", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("E-Mail,Mobile Number,IDFA", ["email", "phone", "device_id"], id="spaced"),
        pytest.param(
            "email_address,CELL,mobile-ad-id", ["email", "phone", "device_id"], id="mixed"
        ),
        pytest.param("Email Address,msisdn,gaid", ["email", "phone", "device_id"], id="gaid"),
        pytest.param("MAIL,Telephone,advertising_id", ["email", "phone", "device_id"], id="long"),
        pytest.param("id,mail", ["email"], id="one"),
    ],
)
def test_well_known_column_names_are_taken_and_the_choice_is_printed(
    tmp_path: Path, header: str, expected: list[str]
) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    names = header.split(",")
    cells = {"email": "a@example.com", "phone": "+1 201 555 0123"}
    cells["device_id"] = "38400000-8cf0-11bd-b23e-10b96e40000d"
    row = [cells.get(kind, "7") for kind in (*expected, "x")[: len(names)]]
    if len(names) == 2:
        row = ["7", cells["email"]]
    src.write_text(header + "\n" + ",".join(row) + "\n", encoding="utf-8")
    code, stdout, stderr = invoke(str(src), "-o", str(out), "--log-format", "json")
    assert code == 0, stderr
    event = json.loads(stdout.splitlines()[0])
    assert event["event"] == "columns"
    chosen = [n for n in names if n not in ("id",)]
    assert event["columns"] == dict(zip(expected, chosen, strict=True))
    code, _, stderr = invoke(str(src), "-o", str(out), "--log-format", "human")
    assert code == 0
    assert (
        "columns: " + ", ".join(f"{k} from {n!r}" for k, n in zip(expected, chosen, strict=True))
        in stderr
    )


def test_every_column_named_for_a_type_is_read(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("mail,email\nx@example.com,a@example.com\n", encoding="utf-8")
    code, stdout, _ = invoke(str(src), "-o", str(out), "--log-format", "json")
    assert code == 0
    assert json.loads(stdout.splitlines()[0])["columns"] == {"email": ["mail", "email"]}
    assert len(out.read_text().splitlines()) == 3  # the header and both addresses


def test_several_columns_of_a_type_are_listed_on_the_columns_line(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("Phone,Mobile,Work Phone\n,+1 201 555 0123,+1 201 555 0124\n", "utf-8")
    code, _, stderr = invoke(str(src), "-o", str(out), "--log-format", "human")
    assert code == 0, stderr
    assert "columns: phone from 'Phone' and 'Mobile' and 'Work Phone'" in stderr
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(
            "E-mail,Email,phone",
            r"in\.csv: 2 columns could hold email identifiers \('E-mail', 'Email'\); "
            r"name the ones to use with --email-column",
            id="two-emails",
        ),
        pytest.param(
            "Mobile,mobile",
            r"in\.csv: 2 columns could hold phone identifiers \('Mobile', 'mobile'\)",
            id="two-phones",
        ),
        pytest.param(
            "IDFA,idfa",
            r"in\.csv: 2 columns could hold device_id identifiers \('IDFA', 'idfa'\)",
            id="two-device-ids",
        ),
    ],
)
def test_two_columns_named_alike_are_refused(tmp_path: Path, header: str, message: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(header + "\n" + ",".join(["x"] * header.count(",")) + ",y\n", "utf-8")
    code, _, stderr = invoke(str(src), "-o", str(tmp_path / "out.csv"))
    assert code == 65
    assert re.search(message, stderr)


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("mobile 4155550123,Jane", id="phone-after-a-word"),
        pytest.param("Phone: 415 555 0123,Jane", id="phone-after-a-label"),
        pytest.param("415.555.0123 home,Jane", id="phone-before-a-word"),
        pytest.param("384000008cf011bdb23e10b96e40000d,Jane", id="device-id-without-dashes"),
    ],
)
def test_a_headerless_first_row_is_not_shown(tmp_path: Path, first: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(first + "\nmobile 4155550000,Joe\n", encoding="utf-8")
    value = first.split(",")[0]
    code, stdout, stderr = invoke(str(src), "-o", str(tmp_path / "o.csv"), "--log-format", "json")
    assert code == 65
    assert "no identifier column found; columns are column 1, 'Jane'" in stderr
    assert value not in stderr
    assert value not in stdout
    assert json.loads(stdout.splitlines()[-1])["error"] == "InputError"


# --- property: whatever a file of identifiers looks like, none of them is ever shown ----------
_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12)
_EMAILS = st.builds(
    lambda local, domain, upper: (f"{local}@{domain}").upper() if upper else f"{local}@{domain}",
    _LOCAL.filter(lambda s: s[0] not in "." and s[-1] != "."),
    st.sampled_from(["example.com", "gmail.com", "mail.example.co.uk"]),
    st.booleans(),
)
_DIGITS = st.text(alphabet="0123456789", min_size=7, max_size=7)
_PHONES = st.builds(
    lambda d, shape: shape.format(a=d[:3], b=d[3:], c=d[3:5], e=d[5:]),
    _DIGITS,
    st.sampled_from(
        [
            "+1 415 {a} {b}",
            "(415) {a}-{b}",
            "415.{a}.{b}",
            "415{a}{b}",
            "+44 7700 {a}{b}",
            "0044 7700 {a} {c} {e}",
            "Phone: 415 {a} {b}",
            "mobile 415{a}{b}",
            "415.{a}.{b} home",
            "tel:+1415{a}{b}",
            "415/{a}/{b}",
        ]
    ),
)
_DEVICE_IDS = st.builds(
    lambda u, dashed, upper: (
        (str(u) if dashed else u.hex).upper() if upper else (str(u) if dashed else u.hex)
    ),
    st.uuids(),
    st.booleans(),
    st.booleans(),
)
_CELLS = st.one_of(_EMAILS, _PHONES, _DEVICE_IDS)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.lists(_CELLS, min_size=1, max_size=4), min_size=1, max_size=5),
    header=st.sampled_from([None, "canonical", "aliases"]),
    fmt=st.sampled_from(["csv", "tsv", "ndjson"]),
)
def test_no_cell_of_a_file_of_identifiers_is_ever_shown(
    rows: list[list[str]], header: str | None, fmt: str
) -> None:
    width = max(len(r) for r in rows)
    rows = [r + r[:1] * (width - len(r)) for r in rows]
    names = {
        None: [f"c{i}" for i in range(width)],
        "canonical": ["email", "phone", "device_id", "other"][:width],
        "aliases": ["E-Mail", "Mobile Number", "IDFA", "Notes"][:width],
    }[header]
    with tempfile.TemporaryDirectory() as folder:
        src, out, report = (Path(folder) / n for n in (f"in.{fmt}", "out.csv", "report.json"))
        if fmt == "ndjson":
            keys = names if header else list(rows[0])  # headerless: values as keys
            body = [dict(zip(keys, row, strict=True)) for row in rows]
            src.write_text("".join(json.dumps(b) + "\n" for b in body), encoding="utf-8")
        else:
            sep = "\t" if fmt == "tsv" else ","
            lines = ([sep.join(names)] if header else []) + [sep.join(r) for r in rows]
            src.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _, stdout, stderr = invoke(
            str(src), "-o", str(out), "--report", str(report), "--log-format", "json"
        )
        shown = stdout + stderr + (report.read_text() if report.exists() else "")
    leaked = [
        cell
        for row in rows
        for cell in row
        for form in {cell, cell.lower(), re.sub(r"\D", "", cell)}
        if len(form) >= 7 and form in shown
    ]
    assert not leaked, f"{len(leaked)} identifiers shown"  # a count: never print the values
