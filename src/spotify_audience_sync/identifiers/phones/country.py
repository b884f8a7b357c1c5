"""A country column's values as libphonenumber regions, so each phone can use its row's country.

Exports write a person's country every way there is: ``GB``, ``gbr``, ``UK``, ``United
Kingdom``, ``Vereinigtes Königreich``, ``+44``, ``0044``, ``44``. :func:`row_regions` turns a
column of them into a region per row (ISO 3166-1 alpha-2, as ``phonenumbers.parse`` takes it)
without Python per row: the column's distinct values are keyed by one polars expression
(uppercase, letters and digits only, a leading ``the`` and ``00`` dropped) and looked up in a
table built once from ``phonenumbers``' own region list and country names (English and eight
languages of European exports, in :mod:`.country_names`), plus the alpha-3 codes and the usual
variants below. Blank and unrecognized values take the default region;
unrecognized ones are counted, never shown (a country cell may hold anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers
import polars as pl
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from spotify_audience_sync.identifiers.phones.country_names import NAMES

__all__ = ["RowRegions", "country_key", "country_table", "region_of", "row_regions"]

#: ISO 3166-1 alpha-3 for every region libphonenumber knows (AC and TA have none; XK's is the
#: code the EU and the IMF use).
_ALPHA3 = """
AD AND AE ARE AF AFG AG ATG AI AIA AL ALB AM ARM AO AGO AR ARG AS ASM AT AUT AU AUS AW ABW
AX ALA AZ AZE BA BIH BB BRB BD BGD BE BEL BF BFA BG BGR BH BHR BI BDI BJ BEN BL BLM BM BMU
BN BRN BO BOL BQ BES BR BRA BS BHS BT BTN BW BWA BY BLR BZ BLZ CA CAN CC CCK CD COD CF CAF
CG COG CH CHE CI CIV CK COK CL CHL CM CMR CN CHN CO COL CR CRI CU CUB CV CPV CW CUW CX CXR
CY CYP CZ CZE DE DEU DJ DJI DK DNK DM DMA DO DOM DZ DZA EC ECU EE EST EG EGY EH ESH ER ERI
ES ESP ET ETH FI FIN FJ FJI FK FLK FM FSM FO FRO FR FRA GA GAB GB GBR GD GRD GE GEO GF GUF
GG GGY GH GHA GI GIB GL GRL GM GMB GN GIN GP GLP GQ GNQ GR GRC GT GTM GU GUM GW GNB GY GUY
HK HKG HN HND HR HRV HT HTI HU HUN ID IDN IE IRL IL ISR IM IMN IN IND IO IOT IQ IRQ IR IRN
IS ISL IT ITA JE JEY JM JAM JO JOR JP JPN KE KEN KG KGZ KH KHM KI KIR KM COM KN KNA KP PRK
KR KOR KW KWT KY CYM KZ KAZ LA LAO LB LBN LC LCA LI LIE LK LKA LR LBR LS LSO LT LTU LU LUX
LV LVA LY LBY MA MAR MC MCO MD MDA ME MNE MF MAF MG MDG MH MHL MK MKD ML MLI MM MMR MN MNG
MO MAC MP MNP MQ MTQ MR MRT MS MSR MT MLT MU MUS MV MDV MW MWI MX MEX MY MYS MZ MOZ NA NAM
NC NCL NE NER NF NFK NG NGA NI NIC NL NLD NO NOR NP NPL NR NRU NU NIU NZ NZL OM OMN PA PAN
PE PER PF PYF PG PNG PH PHL PK PAK PL POL PM SPM PR PRI PS PSE PT PRT PW PLW PY PRY QA QAT
RE REU RO ROU RS SRB RU RUS RW RWA SA SAU SB SLB SC SYC SD SDN SE SWE SG SGP SH SHN SI SVN
SJ SJM SK SVK SL SLE SM SMR SN SEN SO SOM SR SUR SS SSD ST STP SV SLV SX SXM SY SYR SZ SWZ
TC TCA TD TCD TG TGO TH THA TJ TJK TK TKL TL TLS TM TKM TN TUN TO TON TR TUR TT TTO TV TUV
TW TWN TZ TZA UA UKR UG UGA US USA UY URY UZ UZB VA VAT VC VCT VE VEN VG VGB VI VIR VN VNM
VU VUT WF WLF WS WSM XK XKX YE YEM YT MYT ZA ZAF ZM ZMB ZW ZWE
"""

#: Names and abbreviations exports use that the tables above do not hold.
_VARIANTS = {
    "GB": "UK, Great Britain, Britain, England, Scotland, Wales, Northern Ireland",
    "US": "United States of America, America, U.S., U.S.A., United States (US)",
    "NL": "Holland, The Netherlands",
    "KR": "Korea, Republic of Korea, Korea (South)",
    "KP": "Democratic People's Republic of Korea, Korea (North)",
    "RU": "Russian Federation",
    "CZ": "Czechia",
    "CI": "Ivory Coast, Cote d'Ivoire",
    "VN": "Viet Nam",
    "AE": "UAE, Emirates",
    "TR": "Türkiye, Turkiye",
    "MK": "North Macedonia",
    "SZ": "Eswatini",
    "MM": "Burma",
    "CV": "Cabo Verde",
    "VA": "Holy See, Vatican City",
    "PS": "State of Palestine",
    "MO": "Macau",
    "LA": "Lao People's Democratic Republic",
    "SY": "Syrian Arab Republic",
    "IR": "Islamic Republic of Iran",
    "TZ": "United Republic of Tanzania",
    "MD": "Republic of Moldova",
    "BN": "Brunei Darussalam",
    "TL": "East Timor",
    "CD": "DRC, DR Congo, Democratic Republic of the Congo, Congo-Kinshasa",
    "CG": "Republic of the Congo, Congo-Brazzaville",
    "BO": "Plurinational State of Bolivia",
    "VE": "Bolivarian Republic of Venezuela",
    "FM": "Federated States of Micronesia",
    "RE": "Réunion",
    "BS": "The Bahamas",
    "GM": "The Gambia",
    "VI": "US Virgin Islands",
    "SX": "Sint Maarten",
}


def country_key(values: pl.Expr) -> pl.Expr:
    """The lookup key of a country value: uppercase, letters and digits only, a leading
    ``the`` and a leading ``00`` (an international call prefix) dropped."""
    upper = values.str.strip_chars().str.to_uppercase().str.replace(r"^THE\s+", "")
    return upper.str.replace_all(r"[^\p{L}\p{N}]", "").str.replace(r"^00(\d)", "${1}")


def _calling_codes() -> dict[str, str]:
    """``"44"`` -> GB: each calling code's main region (non-geographic codes have none)."""
    return {
        str(code): regions[0]
        for code, regions in COUNTRY_CODE_TO_REGION_CODE.items()
        if regions and regions[0] in SUPPORTED_REGIONS
    }


@cache
def country_table() -> dict[str, str]:
    """Lookup key -> region. Codes outrank names; a name two regions share maps to neither."""
    codes: dict[str, str] = {r: r for r in SUPPORTED_REGIONS}
    tokens = _ALPHA3.split()
    codes.update({tokens[i + 1]: tokens[i] for i in range(0, len(tokens), 2)})
    names: dict[str, str] = {}
    shared: set[str] = set()
    written = [(r, v.strip()) for r, vs in _VARIANTS.items() for v in vs.split(",")]
    written += [(r, name) for r, names in sorted(NAMES.items()) for name in names]
    raw = pl.Series([text for _, text in written], dtype=pl.String)
    keys = pl.select(country_key(pl.lit(raw))).to_series().to_list()
    for (region, _), key in zip(written, keys, strict=True):
        if not key or key in codes:
            continue
        if names.setdefault(key, region) != region:
            shared.add(key)
    for key in shared:
        del names[key]
    return {**_calling_codes(), **names, **codes}


def region_of(value: str) -> str | None:
    """One value's region, or None (blank or unknown): for checks and error messages."""
    key = pl.select(country_key(pl.lit(value, pl.String))).item()
    return country_table().get(key) if key else None


@dataclass(frozen=True)
class RowRegions:
    """A region per row, and how the country column decided them.

    ``regions`` is never null: blank and unknown values hold the default region. ``from_column``
    marks rows whose own country was recognized; ``unknown`` counts the non-blank values that
    were not (values are never kept or shown).
    """

    regions: pl.Series
    from_column: pl.Series
    unknown: int

    def gather(self, rows: pl.Series) -> RowRegions:
        """These rows only (the unknown count is the whole column's)."""
        return RowRegions(self.regions.gather(rows), self.from_column.gather(rows), self.unknown)


def row_regions(values: pl.Series, default_region: str) -> RowRegions:
    """A libphonenumber region for each row of a country column (see the module docstring).

    The work is per distinct value: a column of a million rows holds a few hundred countries.
    """
    default = default_region.upper()
    if default not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default region {default!r} is not a region libphonenumber knows")
    text = values.cast(pl.String).fill_null("")
    distinct = text.unique()
    keys = pl.select(country_key(pl.lit(distinct))).to_series().to_list()
    # A few hundred keys at most: a dict lookup each beats handing polars the whole table
    # (thousands of spellings), and each row then takes its value's answer by index.
    table = country_table()
    found = [table.get(key) for key in keys]
    known = [region is not None for region in found]
    unknown = [region is None and key != "" for region, key in zip(found, keys, strict=True)]
    index = text.cast(pl.Enum(distinct.to_list())).to_physical()
    return RowRegions(
        regions=pl.Series("region", [r or default for r in found], pl.String).gather(index),
        from_column=pl.Series("from_column", known, pl.Boolean).gather(index),
        unknown=int(pl.Series(unknown, dtype=pl.Boolean).gather(index).sum()),
    )
