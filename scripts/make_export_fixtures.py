"""Write the synthetic CRM exports under ``fixtures/exports/``: shaped like the real thing, no
real person in them (names are made up, emails are at example.com/.org/.net, phone numbers are
in fictional or unassigned ranges), and the same bytes on every run.

    uv run python scripts/make_export_fixtures.py          # rewrite the fixtures
    uv run python scripts/make_export_fixtures.py --check  # exit 1 if they are stale

Shapes: a Shopify customer export (``Accepts Email Marketing``, ``Phone`` and ``Default Address
Phone``), a HubSpot contacts export (``Phone Number`` mostly empty, ``Mobile Phone Number``), a
Salesforce report (``Mailing Country``, ``Email Opt Out``, the report's footer lines), a German
Excel export (cp1252, ``;``), and a suppression list.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from collections.abc import Callable
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
ROWS = 200
FIRST = ["Ana", "Ben", "Chloé", "Dario", "Eva", "Finn", "Greta", "Hugo", "Inès", "Jonas", "Jürgen"]
LAST = ["Alvarez", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Müller", "Rossi"]
DOMAINS = ["example.com", "example.org", "example.net"]


def _email(rng: random.Random, i: int) -> str:
    name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}".lower().encode("ascii", "ignore").decode()
    return f"{name}{i}@{rng.choice(DOMAINS)}"


def _us_phone(rng: random.Random) -> str:
    """A US number in the 555-01XX range reserved for fiction, written as people write it."""
    area, line = rng.choice(["201", "212", "415", "617"]), f"01{rng.randrange(100):02d}"
    return rng.choice([f"({area}) 555-{line}", f"+1 {area} 555 {line}", f"{area}.555.{line}"])


def _de_mobile(rng: random.Random) -> str:
    digits = f"{rng.randrange(10**7):07d}"
    return rng.choice([f"+49 151 2{digits}", f"0151 2{digits}"])


def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def shopify(rng: random.Random) -> bytes:
    header = ["First Name", "Last Name", "Email", "Accepts Email Marketing", "Phone",
              "Default Address Phone", "Default Address Country Code", "Total Spent"]  # fmt: skip
    rows = [header]
    for i in range(ROWS):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = _us_phone(rng) if rng.random() < 0.5 else ""
        email = _email(rng, i) if rng.random() < 0.95 else ""
        consent = rng.choice(["yes", "no"])
        address_phone = phone or (_us_phone(rng) if rng.random() < 0.3 else "")
        spent = f"{rng.randrange(10, 900)}.00"
        rows.append([first, last, email, consent, phone, address_phone, "US", spent])
    return _csv(rows).encode()


def hubspot(rng: random.Random) -> bytes:
    header = ["Record ID", "First Name", "Last Name", "Email", "Phone Number",
              "Mobile Phone Number", "Country/Region", "Marketing contact status"]  # fmt: skip
    rows = [header]
    for i in range(ROWS):
        rows.append([
            str(1000 + i), rng.choice(FIRST), rng.choice(LAST), _email(rng, i),
            _us_phone(rng) if rng.random() < 0.32 else "",
            _us_phone(rng) if rng.random() < 0.8 else "",
            "United States", rng.choice(["Marketing contact", "Non-marketing contact"]),
        ])  # fmt: skip
    return _csv(rows).encode()


def salesforce(rng: random.Random) -> bytes:
    header = ["Contact ID", "First Name", "Last Name", "Email", "Phone", "Mobile",
              "Mailing Country", "Email Opt Out"]  # fmt: skip
    rows = [header]
    for i in range(ROWS):
        first, last, email = rng.choice(FIRST), rng.choice(LAST), _email(rng, i)
        phone = _us_phone(rng) if rng.random() < 0.6 else ""
        mobile = _us_phone(rng) if rng.random() < 0.4 else ""
        opt_out = rng.choice(["0", "0", "0", "1"])
        rows.append([f"003{i:012d}", first, last, email, phone, mobile, "USA", opt_out])
    footer = ['""', '"Contacts with email"', '"Copyright (c) 2000-2026 salesforce.com, inc."']
    return (_csv(rows) + "\n".join(footer) + "\n").encode()


def excel_de(rng: random.Random) -> bytes:
    header = ["Kundennummer", "Anrede", "Vorname", "Nachname", "E-Mail", "Telefon", "Land"]
    rows = [header]
    for i in range(ROWS):
        rows.append([
            f"K{10000 + i}", rng.choice(["Herr", "Frau"]), rng.choice(FIRST), rng.choice(LAST),
            _email(rng, i), _de_mobile(rng) if rng.random() < 0.7 else "", "Deutschland",
        ])  # fmt: skip
    return _csv(rows, ";").replace("\n", "\r\n").encode("cp1252")


FIXTURES: dict[str, tuple[int, Callable[[random.Random], bytes]]] = {
    "shopify_customers.csv": (1, shopify),
    "hubspot_contacts.csv": (2, hubspot),
    "salesforce_report.csv": (3, salesforce),
    "kunden_excel.csv": (4, excel_de),
}


def render() -> dict[str, bytes]:
    files = {name: make(random.Random(seed)) for name, (seed, make) in FIXTURES.items()}
    files["opt_outs.csv"] = _opt_outs(files["hubspot_contacts.csv"])
    return files


def _opt_outs(hubspot_file: bytes) -> bytes:
    """Every tenth HubSpot contact's email: an opt-out list as a type,value file."""
    reader = csv.DictReader(io.StringIO(hubspot_file.decode()))
    emails = [row["Email"] for i, row in enumerate(reader) if i % 10 == 0]
    return _csv([["type", "value"], *(["email", e] for e in emails)]).encode()


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, data in files.items() if (TARGET / n).read_bytes() != data]
        print("stale: " + ", ".join(stale) if stale else "fixtures are up to date")
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (TARGET / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
