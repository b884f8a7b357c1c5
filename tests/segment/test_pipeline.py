"""The whole identifier pipeline against an independent, row-by-row reference implementation."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import stat
from pathlib import Path

import phonenumbers
import polars as pl
import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType, NormalizeOptions, hash_frame
from spotify_audience_sync.segment.encode import Layout, encode_records, to_blocks
from spotify_audience_sync.segment.pipeline import PrepareOptions, prepare_segment, resolve_columns
from spotify_audience_sync.segment.sources import open_source
from spotify_audience_sync.segment.staging import Stage, partition_payload

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "segment.csv"
HEX = re.compile(r"^[0-9a-f]{64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def reference(path: Path) -> list[tuple[str, str]]:
    """What the file must contain, computed the slow, obvious way (type-value layout)."""
    rows: dict[tuple[str, str], None] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            email = (row["Email"] or "").strip().lower()
            if HEX.match(email):
                rows[("EMAIL_ID_SHA256", email)] = None
            elif EMAIL_RE.match(email):
                rows[("EMAIL_ID_SHA256", _sha(email))] = None
            phone = (row["phone"] or "").strip()
            if phone:
                try:
                    number = phonenumbers.parse(phone, "US")
                except phonenumbers.NumberParseException:
                    number = None
                if number is not None and phonenumbers.is_valid_number(number):
                    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    rows[("PHONE_NUMBER_SHA256", _sha(e164))] = None
            device = (row["device_id"] or "").strip().lower()
            if UUID_RE.match(device) and set(device) != {"0", "-"}:
                rows[("DEVICE_ID_SHA256", _sha(device))] = None
    return list(rows)


def run(
    path: Path, layout: Layout = "type-value", chunk_bytes: int = 4 << 20, **kw: object
) -> tuple[bytes, object]:
    with open_source(str(path), chunk_bytes=chunk_bytes) as source:
        options = PrepareOptions(layout=layout, **kw)  # type: ignore[arg-type]
        with prepare_segment(source, options) as prepared:
            out = io.BytesIO()
            prepared.write_to(out)
            return out.getvalue(), prepared.report


def parse(data: bytes) -> list[tuple[str, str]]:
    lines = data.decode().splitlines()
    assert lines[0] == "type,value"
    return [tuple(line.split(",")) for line in lines[1:]]  # type: ignore[misc]


def test_fixture_matches_the_reference_exactly() -> None:
    data, report = run(FIXTURE)
    got = parse(data)
    want = reference(FIXTURE)
    assert len(got) == len(set(got)), "identical rows must be written once"
    assert set(got) == set(want)
    assert report.rows_written == len(want)  # type: ignore[attr-defined]


def test_counts_add_up() -> None:
    _, report = run(FIXTURE)
    assert report.rows_read == 3000  # type: ignore[attr-defined]
    for counts in report.identifiers.values():  # type: ignore[attr-defined]
        assert counts.accepted + counts.rejected_total == 3000
        assert counts.written + counts.duplicates == counts.accepted
    email = report.identifiers["email"]  # type: ignore[attr-defined]
    assert email.prehashed > 0
    assert email.duplicates > 0
    assert email.rejected["malformed"] > 0


def test_output_does_not_depend_on_batch_boundaries() -> None:
    one_batch, _ = run(FIXTURE)
    many_batches, _ = run(FIXTURE, chunk_bytes=4096)
    assert one_batch == many_batches


def test_output_is_deterministic_with_several_workers() -> None:
    assert run(FIXTURE, workers=1)[0] == run(FIXTURE, workers=3, chunk_bytes=8192)[0]


def test_wide_layout_keeps_a_person_on_one_row(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,phone\n"
        "a@example.com,+1 201 555 0123\n"
        "A@EXAMPLE.COM ,+1 201 555 0123\n"  # the same person again: written once
        "b@example.com,\n"
        ",+44 7400 123456\n"
        "bad,also bad\n",  # nothing valid: no row at all
        encoding="utf-8",
    )
    data, report = run(path, layout="wide")
    lines = data.decode().splitlines()
    assert lines[0] == "EMAIL_ID_SHA256,PHONE_NUMBER_SHA256"
    assert sorted(lines[1:]) == sorted(
        [
            f"{_sha('a@example.com')},{_sha('+12015550123')}",
            f"{_sha('b@example.com')},",
            f",{_sha('+447400123456')}",
        ]
    )
    assert report.identifiers["email"].duplicates == 1  # type: ignore[attr-defined]


def test_header_only_input_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("email,phone\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"header\.csv: has a header but no data rows"):
        run(path)


def test_staged_files_are_private_hold_no_raw_values_and_are_removed(tmp_path: Path) -> None:
    stage_root = tmp_path / "stage"
    stage_root.mkdir()
    with open_source(str(FIXTURE)) as source:
        prepared = prepare_segment(source, PrepareOptions(temp_dir=str(stage_root)))
    (stage_dir,) = list(stage_root.iterdir())
    assert stat.S_IMODE(stage_dir.stat().st_mode) == 0o700
    files = list(stage_dir.iterdir())
    assert files
    with FIXTURE.open(encoding="utf-8") as f:
        raw_emails = {(row.get("Email") or "").strip().lower() for row in csv.DictReader(f)}
    leaked = 0
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        data = file.read_bytes()
        # Named "<partition>-<type>"; records are 64 hex digits and nothing else.
        assert re.fullmatch(r"[0-9a-f]{2}-[012]", file.name)
        assert re.fullmatch(rb"(?:[0-9a-f]{64})+", data), "staged bytes are not digests"
        text = data.decode("latin-1")
        leaked += sum(1 for e in raw_emails if "@" in e and e in text)
    assert leaked == 0
    with prepared:
        list(prepared.chunks())
    assert not stage_dir.exists()


def test_stage_is_removed_when_reading_fails(tmp_path: Path) -> None:
    stage_root = tmp_path / "stage"
    stage_root.mkdir()
    path = tmp_path / "bad.csv"
    path.write_bytes(b"email\n" + b"ok@example.com\n" * 2000 + b"\xff\xfe@example.com\n")
    with open_source(str(path), chunk_bytes=1024) as source, pytest.raises(InputError):
        prepare_segment(source, PrepareOptions(temp_dir=str(stage_root)))
    assert list(stage_root.iterdir()) == []


def test_dedup_is_exact_across_batches(tmp_path: Path) -> None:
    digests = [_sha(f"user{i}@example.com") for i in range(50)]
    frame = pl.DataFrame({"email_value": digests, "email_status": ["prehashed"] * 50})
    hashes = {IdentifierType.EMAIL: hash_frame(frame, IdentifierType.EMAIL)}
    [block] = to_blocks(hashes, "type-value", [IdentifierType.EMAIL])
    with Stage(block.records.shape[1], tmp_path) as stage:
        stage.write(block.group, partition_payload(block.records, block.partitions))
        stage.write(block.group, partition_payload(block.records[::-1], block.partitions[::-1]))
        out = b"".join(
            stage.deduplicated(
                lambda parts: b"".join(
                    encode_records(r, "type-value", [IdentifierType.EMAIL], g)
                    for g, r in parts.items()
                )
            )
        )
    lines = out.decode().splitlines()
    assert sorted(lines) == sorted(f"EMAIL_ID_SHA256,{d}" for d in digests)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param(
            {},
            {IdentifierType.EMAIL: "Email", IdentifierType.PHONE: "PHONE"},
            id="defaults-any-case",
        ),
        pytest.param(
            {IdentifierType.EMAIL: "work_email"},
            {IdentifierType.EMAIL: "work_email", IdentifierType.PHONE: "PHONE"},
            id="explicit-overrides-one-type",
        ),
    ],
)
def test_column_resolution(
    requested: dict[IdentifierType, str], expected: dict[IdentifierType, str]
) -> None:
    assert (
        resolve_columns("seg.csv", ["Email", "PHONE", "work_email", "name"], requested) == expected
    )


def test_unknown_column_lists_what_there_is() -> None:
    with pytest.raises(
        InputError, match=r"seg\.csv: no column 'mail' \(--email-column\); columns are 'id', 'name'"
    ):
        resolve_columns("seg.csv", ["id", "name"], {IdentifierType.EMAIL: "mail"})


def test_no_identifier_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no identifier column found"):
        resolve_columns("seg.csv", ["id", "name"], {})


def test_region_option_applies_to_national_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gb.csv"
    path.write_text("phone\n07400 123456\n", encoding="utf-8")
    data, _ = run(path, normalize=NormalizeOptions(default_region="GB"))
    assert parse(data) == [("PHONE_NUMBER_SHA256", _sha("+447400123456"))]


def test_gzip_and_plain_inputs_give_the_same_file(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "segment.csv.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert run(gz)[0] == run(FIXTURE)[0]


def test_report_is_counts_only() -> None:
    _, report = run(FIXTURE)
    text = str(report.to_dict())  # type: ignore[attr-defined]
    assert "@" not in text
    assert not re.search(r"[0-9a-f]{64}", text)
    assert os.fspath(FIXTURE) in text


@pytest.mark.parametrize("layout", ["type-value", "wide"])
def test_finalize_knows_counts_size_and_fingerprint_before_the_file_is_written(
    layout: Layout,
) -> None:
    one_pass, one_pass_report = run(FIXTURE, layout=layout)
    with (
        open_source(str(FIXTURE)) as source,
        prepare_segment(source, PrepareOptions(layout=layout)) as prepared,
    ):
        fingerprint = prepared.finalize()
        report = prepared.report
        assert report.bytes_written == len(one_pass)
        assert report.rows_written == one_pass_report.rows_written  # type: ignore[attr-defined]
        counts = {k: (v.written, v.duplicates) for k, v in report.identifiers.items()}
        out = io.BytesIO()
        prepared.write_to(out)
    assert out.getvalue() == one_pass
    assert counts == {
        k: (v.written, v.duplicates)
        for k, v in one_pass_report.identifiers.items()  # type: ignore[attr-defined]
    }
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)


def test_fingerprint_depends_on_the_set_not_the_order(tmp_path: Path) -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("\n".join(lines[:-50]) + "\n", encoding="utf-8")

    def fingerprint(path: Path) -> str:
        with open_source(str(path)) as source, prepare_segment(source) as prepared:
            return prepared.finalize()

    assert fingerprint(shuffled) == fingerprint(FIXTURE)
    assert fingerprint(fewer) != fingerprint(FIXTURE)


def _written(path: Path, chunk_bytes: int) -> bytes:
    with open_source(str(path), chunk_bytes=chunk_bytes) as source:
        prepared = prepare_segment(source, PrepareOptions())
    out = io.BytesIO()
    with prepared:
        prepared.write_to(out)
    return out.getvalue()


def test_ragged_and_blank_rows_read_the_same_wherever_a_chunk_starts(tmp_path: Path) -> None:
    """Rows missing a trailing field, with an extra empty one, or blank, are read as polars
    reads them under the header, whichever of them happens to begin a chunk."""
    path = tmp_path / "ragged.csv"
    lines = ["email,phone"]
    for i in range(400):
        email = f"user{i}@example.com"
        lines.append([f"{email},+1201555{i:04d}", email, f"{email},", ""][i % 4])
    path.write_text("\n".join(lines) + "\n")
    whole = _written(path, 1 << 20)
    assert whole.count(b"\n") > 300
    for chunk_bytes in (7, 64, 333, 1000):
        assert _written(path, chunk_bytes) == whole


def test_an_earlier_chunk_s_parse_error_wins_over_a_later_read_error(tmp_path: Path) -> None:
    """Reading runs ahead of parsing; the error the user sees is still the first in the file:
    invalid UTF-8 a few rows before the end of a gzip stream that is cut short."""
    body = b"email\n" + b"".join(b"user%d@example.com\n" % i for i in range(3000))
    body = body.replace(b"user2980@", b"user\xff2980@", 1)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(body)[:-10])  # no trailer, the last bytes lost
    with (
        open_source(str(path), chunk_bytes=256) as source,
        pytest.raises(InputError, match="not valid UTF-8"),
    ):
        prepare_segment(source, PrepareOptions())


@pytest.mark.parametrize("layout", ["type-value", "wide"])
def test_rows_with_an_accepted_identifier_are_counted_per_row(
    tmp_path: Path, layout: Layout
) -> None:
    """The per-person match rate's base: rows where any type was accepted, across batches."""
    path = tmp_path / "people.csv"
    rows = ["email,phone"]
    rows += ["a@example.com,+1 201 555 0100"] * 3  # accepted twice: one row each time
    rows += ["b@example.com,"] * 2  # email only
    rows += ["not-an-email,+1 201 555 0101"]  # phone only
    rows += [",", "nope,12"] * 4  # nothing accepted: blank, or both rejected
    rows += [f"{'a' * 64},"]  # pre-hashed counts as accepted
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for chunk_bytes in (4 << 20, 64):
        _, report = run(path, layout, chunk_bytes=chunk_bytes)
        assert report.rows_read == 15  # type: ignore[attr-defined]
        assert report.rows_with_identifier == 7  # type: ignore[attr-defined]
    with open_source(str(path)) as source, prepare_segment(source) as prepared:
        assert prepared.report.to_dict()["rows_with_identifier"] == 7


#: Issue 27's cells in a CSV (quoted where a comma would split the field).
MESSY = (
    "email,phone\n"
    "mailto:ana@example.com,\n"
    '"""ana""@example.com",\n'  # "ana"@example.com
    '"John Smith <John.Smith@Example.com>",\n'
    "ana@example.com;bo@example.com,+1 201 555 0123\n"
    "ANA@EXAMPLE.COM\u200b,\n"
    "ana\uff20example.com,\n"
    "ana@example.com.,\n"
    "nobody;cy@example.com,\n"  # not a list: one malformed value
    "bad;dee@example.com,\n"  # the same shape
    "bad@;dee@example.com,\n"  # a list: its first address rejected, its second accepted
    "plain@example.com,\n"
)


@pytest.mark.parametrize("layout", ["type-value", "wide"])
def test_messy_email_cells_become_their_addresses(tmp_path: Path, layout: Layout) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    with open_source(str(path)) as source:
        options = PrepareOptions(layout=layout, rejects_path=str(rejects))
        with prepare_segment(source, options) as prepared:
            out = io.BytesIO()
            prepared.write_to(out)
            assert prepared.rejects is not None
            prepared.rejects.commit()
            report = prepared.report
    email = report.identifiers["email"]
    # Counted per identifier: 12 addresses from 11 cells (one cell holds two).
    assert (email.hashed, email.rejected["malformed"]) == (10, 3)
    # ana, bo, john.smith, dee, plain; wide: ana alone and ana with the phone are two rows
    assert email.written == (5 if layout == "type-value" else 6)
    assert report.rows_with_identifier == 9
    assert email.repaired == {
        "unwrapped": 1,
        "mailto": 1,
        "split": 2,
        "unquoted": 1,
        "invisible": 1,
        "nfkc": 1,
        "trailing_dot": 1,
    }
    digests = {_sha(a) for a in ("ana@example.com", "bo@example.com", "john.smith@example.com")}
    digests |= {_sha("dee@example.com"), _sha("plain@example.com")}
    lines = out.getvalue().decode().splitlines()[1:]
    if layout == "type-value":
        emails = {value for kind, value in (line.split(",") for line in lines) if kind[0] == "E"}
    else:  # the second address of a cell is a row of its own, its phone not repeated
        emails = {line.split(",")[0] for line in lines} - {""}
        assert f"{_sha('ana@example.com')},{_sha('+12015550123')}" in lines
        assert f"{_sha('bo@example.com')}," in lines
    assert emails == digests
    # The rejects report names lines and reasons, never a value; the summary shows counts.
    assert rejects.read_text().splitlines()[1:] == [
        "9,email,malformed",
        "10,email,malformed",
        "11,email,malformed",
    ]
    summary = report.summary()
    assert "email values repaired: unwrapped 1, mailto 1, split 2" in summary
    assert "@" not in str(report.to_dict()) + summary
