"""Country values -> regions (phones.country), and phones read with their row's country."""

from __future__ import annotations

import phonenumbers
import polars as pl
import pytest

from spotify_audience_sync.identifiers.normalize import (
    CODES,
    HASHED,
    IdentifierType,
    NormalizeOptions,
    hash_batch,
    normalize_values,
)
from spotify_audience_sync.identifiers.phones.country import country_table, region_of, row_regions
from spotify_audience_sync.identifiers.phones.exact import normalize_phones_exact
from spotify_audience_sync.identifiers.phones.normalize import normalize_phones


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("GB", "GB"),
        ("gb", "GB"),
        (" Gb ", "GB"),
        ("GBR", "GB"),
        ("gbr", "GB"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("united kingdom", "GB"),
        ("Great Britain", "GB"),
        ("Vereinigtes Königreich", "GB"),
        ("+44", "GB"),
        ("0044", "GB"),
        ("44", "GB"),
        ("(+44)", "GB"),
        ("US", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("+1", "US"),
        ("1", "US"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("49", "DE"),
        ("the Netherlands", "NL"),
        ("Holland", "NL"),
        ("France", "FR"),
        ("Frankreich", "FR"),
        ("España", "ES"),
        ("Espana", None),  # accents are part of the name; a near miss is unknown, not guessed
        ("Österreich", "AT"),
        ("Schweiz", "CH"),
        ("Côte d'Ivoire", "CI"),
        ("South Korea", "KR"),
        ("+7", "RU"),
        ("Kazakhstan", "KZ"),
        ("Brasil", "BR"),
        ("", None),
        ("   ", None),
        ("nowhere", None),
        ("999", None),
        ("XX", None),
    ],
)
def test_country_values_name_their_region(value: str, region: str | None) -> None:
    assert region_of(value) == region


def test_every_region_has_its_codes_and_a_name() -> None:
    table = country_table()
    for region in phonenumbers.SUPPORTED_REGIONS:
        assert table[region] == region
    alpha3 = {key: region for key, region in table.items() if len(key) == 3 and key.isalpha()}
    # AC and TA (Ascension, Tristan da Cunha) have no ISO 3166-1 code of their own.
    assert set(alpha3.values()) == set(phonenumbers.SUPPORTED_REGIONS) - {"AC", "TA"}
    assert len(set(alpha3)) == len(alpha3)
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        if regions[0] in phonenumbers.SUPPORTED_REGIONS:
            assert table[str(code)] == regions[0]


def test_row_regions_fill_blanks_and_unknowns_with_the_default_and_count_unknowns() -> None:
    values = pl.Series(["DE", None, "", "  ", "Atlantis", "fr", "Atlantis", "+44"])
    found = row_regions(values, "us")
    assert found.regions.to_list() == ["DE", "US", "US", "US", "US", "FR", "US", "GB"]
    assert found.from_column.to_list() == [True, False, False, False, False, True, False, True]
    assert found.unknown == 2
    with pytest.raises(ValueError, match="default region"):
        row_regions(values, "XX")


def test_row_regions_of_a_numeric_column() -> None:
    """A calling-code column a spreadsheet typed as numbers."""
    found = row_regions(pl.Series([44, 1, None, 33]), "DE")
    assert found.regions.to_list() == ["GB", "US", "DE", "FR"]


NATIONAL = {
    "GB": "020 7946 0018",
    "DE": "030 901820",
    "FR": "01 42 68 53 00",
    "US": "(212) 555-0123",
    "AU": "02 9374 4000",
}


def _mixed() -> tuple[list[str], list[str | None]]:
    values, countries = [], []
    for region, number in NATIONAL.items():
        values += [number, f"+{phonenumbers.country_code_for_region(region)} {number[1:]}"]
        countries += [region, "US" if region != "US" else "GB"]  # international: country ignored
    return values, countries


@pytest.mark.parametrize("native", [True, False], ids=["C", "polars"])
@pytest.mark.parametrize("validation", ["valid", "possible"])
def test_national_numbers_use_their_rows_country(native: bool, validation: str) -> None:
    values, countries = _mixed()
    series, regions = pl.Series(values), pl.Series(countries)
    got = normalize_phones(
        series,
        default_region="US",
        validation=validation,  # type: ignore[arg-type]
        native=native,
        regions=regions,
    )
    expected = normalize_phones_exact(
        series,
        default_region="US",
        validation=validation,  # type: ignore[arg-type]
        regions=regions,
    )
    assert got.rows() == expected.rows()
    assert got["e164"].null_count() <= 2  # nearly all valid once read with their country
    # Without the country column most of them are lost: the number the issue reports.
    alone = normalize_phones(series, default_region="US", validation=validation)  # type: ignore[arg-type]
    assert alone["e164"].null_count() > got["e164"].null_count()


def test_hash_batch_reads_the_country_column_and_counts_what_it_used() -> None:
    values, countries = _mixed()
    countries[0] = "Atlantis"  # unknown: the default region (US) is used, so GB's number fails
    batch = pl.DataFrame({"phone": values, "land": countries})
    options = NormalizeOptions(default_region="US", country_column="land")
    hashed = hash_batch(batch, {IdentifierType.PHONE: "phone"}, options)
    kept = hashed.codes[IdentifierType.PHONE] == CODES[HASHED]
    national_kept = int(sum(kept[i] for i in range(2, len(values), 2)))
    assert not kept[0]
    assert national_kept == 4  # DE, FR, US (its own country counts too), AU
    assert hashed.country_unknown == 1
    assert hashed.phone_row_country == national_kept  # international rows are not counted
    plain = hash_batch(batch, {IdentifierType.PHONE: "phone"}, NormalizeOptions())
    assert (plain.phone_row_country, plain.country_unknown) == (0, 0)
    assert int(kept.sum()) > int((plain.codes[IdentifierType.PHONE] == CODES[HASHED]).sum())


def test_normalize_values_ignores_a_country_column_it_is_not_given() -> None:
    """The convenience path has no country column: the default region, as before."""
    [(digest, status)] = normalize_values(IdentifierType.PHONE, ["020 7946 0018"])
    assert (digest, status) == (None, "invalid_number")


def test_the_country_names_module_matches_the_installed_phonenumbers() -> None:
    """country_names.py is generated (scripts/country_names.py): regenerate on a new release."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "country_names.py"
    spec = importlib.util.spec_from_file_location("country_names_script", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace: dict[str, object] = {}
    exec(module.render(), namespace)
    from spotify_audience_sync.identifiers.phones.country_names import NAMES

    assert namespace["NAMES"] == NAMES
