"""Column detection: names of every language, several columns per type, digests, countries."""

from __future__ import annotations

import shlex

import pytest

from spotify_audience_sync.errors import InputError
from spotify_audience_sync.identifiers.normalize import IdentifierType
from spotify_audience_sync.segment.columns import (
    is_hashed_column,
    resolve_column_lists,
    resolve_country_column,
)
from spotify_audience_sync.segment.consent import consent_like

EMAIL, PHONE, DEVICE = IdentifierType.EMAIL, IdentifierType.PHONE, IdentifierType.DEVICE_ID


@pytest.mark.parametrize(
    "name", ["E-Mail", "Mail", "Courriel", "Correo", "correo electrónico", "E-Mail-Adresse"]
)
def test_email_headers_of_many_languages(name: str) -> None:
    assert resolve_column_lists("f", ["id", name], {}) == {EMAIL: [name]}


@pytest.mark.parametrize(
    "name",
    [
        "Telefon", "Telefonnummer", "Handy", "Mobil", "Téléphone", "TELEPHONE", "Portable",
        "Teléfono", "Telefono", "Móvil", "Celular", "Cellulare", "Telefone", "mobile_phone",
        "phone_number", "msisdn", "Mobile Phone Number", " phone  number ",
    ],
)  # fmt: skip
def test_phone_headers_of_many_languages(name: str) -> None:
    assert resolve_column_lists("f", ["id", name], {}) == {PHONE: [name]}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("email_sha256", EMAIL),
        ("EMAIL_SHA256", EMAIL),
        ("sha256_email", EMAIL),
        ("hashed_email", EMAIL),
        ("email_hash", EMAIL),
        ("Email (SHA-256)", EMAIL),
        ("phone_sha256", PHONE),
        ("hashed_phone", PHONE),
        ("maid_sha256", DEVICE),
    ],
)
def test_digest_headers_are_pre_hashed_columns_of_their_type(
    name: str, kind: IdentifierType
) -> None:
    assert resolve_column_lists("f", [name], {}) == {kind: [name]}
    assert is_hashed_column(name)


def test_plain_columns_are_not_digest_columns() -> None:
    assert not any(is_hashed_column(n) for n in ["email", "Phone", "E-Mail", "hash"])


def test_every_column_of_a_type_is_taken_in_file_order() -> None:
    columns = ["Email", "Phone", "Mobile", "Work Phone", "Name"]
    assert resolve_column_lists("f", columns, {}) == {
        EMAIL: ["Email"],
        PHONE: ["Phone", "Mobile", "Work Phone"],
    }


def test_requested_columns_may_be_several_and_are_exact() -> None:
    columns = ["Email", "Phone", "Mobile", "Work Phone"]
    asked = {PHONE: ["work phone", "Mobile"]}
    assert resolve_column_lists("f", columns, asked) == {
        EMAIL: ["Email"],
        PHONE: ["Work Phone", "Mobile"],
    }


def test_names_that_fold_alike_are_ambiguous() -> None:
    with pytest.raises(InputError, match=r"2 columns could hold email identifiers"):
        resolve_column_lists("f", ["E-Mail", "email"], {})


def test_no_identifier_column_advice_quotes_the_name_for_a_shell() -> None:
    with pytest.raises(InputError) as caught:
        resolve_column_lists("f.csv", ["Kunden Nr", "Name"], {})
    message = str(caught.value)
    assert "columns are 'Kunden Nr', 'Name'" in message
    advice = message.split("e.g. ")[1].rstrip(".")
    assert shlex.split(advice) == ["--email-column", "Kunden Nr"]


@pytest.mark.parametrize(
    "name",
    [
        "country", "country_code", "Country/Region", "Default Address Country Code",
        "Billing Country", "Mailing Country", "Land", "Pays", "País", "Paese",
    ],
)  # fmt: skip
def test_country_column_is_detected(name: str) -> None:
    assert resolve_country_column("f", ["email", name], None) == name


def test_country_column_as_requested_or_none() -> None:
    assert resolve_country_column("f", ["email", "Region"], "region") == "Region"
    assert resolve_country_column("f", ["email", "city"], None) is None
    with pytest.raises(InputError, match=r"no column 'nation' \(--country-column\)"):
        resolve_country_column("f", ["email"], "nation")


def test_consent_like_columns_are_noticed() -> None:
    columns = ["Email", "Accepts Email Marketing", "Email Opt Out", "Name", "GDPR consent"]
    assert consent_like(columns) == ["Accepts Email Marketing", "Email Opt Out", "GDPR consent"]
