"""CSV, XLSX and JSON rows ⇄ profile fields. Pure: no I/O beyond the bytes given.

An upload is read a row at a time (citypair_shared.upload), as often as needed (a check of the whole file, then
the import in batches), so that no more than a batch of rows is ever in memory; exports are written a batch at a
time.
"""

import re
from dataclasses import dataclass

from citypair_shared import upload
from citypair_shared.geography import INDICATORS
from citypair_shared.spreadsheet import csv_text, restore
from citypair_shared.themes import THEME_IDS
from citypair_shared.upload import (  # noqa: F401 - the errors, EXTRA_CELLS, DESCRIPTION_COLUMNS: tabular's too
    DESCRIPTION_COLUMNS,
    EXTRA_CELLS,
    LIST_SEPARATOR,
    BadFile,
    TooManyRows,
    describe_columns,
    plain_schema,
    template_workbook,
)

LIST_COLUMNS = ("alternate_names", "languages", "corridors", "preferred_countries", "excluded_countries")
SCALAR_COLUMNS = (
    "external_id",
    "geonames_id",
    "name",
    "local_name",
    "country_code",
    "admin_region",
    "latitude",
    "longitude",
    "population",
    "timezone",
    "capacity",
    "demo",
)
CONTACT_COLUMNS = ("office", "email", "phone", "website")
COLUMNS = (
    *SCALAR_COLUMNS,
    *LIST_COLUMNS,
    *(f"{side}_{theme}" for theme in THEME_IDS for side in ("offer", "need")),
    *(f"{key}{suffix}" for key in INDICATORS for suffix in ("", "_year")),
    *(f"contact_{c}" for c in CONTACT_COLUMNS),
)
# What an export writes besides the import's columns: set by the service, never by an import, so an import
# of an export ignores them (`id` names the city the row updates, if it is still here).
READ_ONLY_COLUMNS = ("id", "status", "verified", "version")
READ_ONLY_FIELDS = (
    *READ_ONLY_COLUMNS,
    "verified_by",
    "verified_at",
    "last_confirmed_at",
    "stale",
    "partner_ids",
    "public_fields",
    "created_at",
    "updated_at",
)
EXPORT_COLUMNS = ("id", *(c for c in COLUMNS if not c.startswith("contact_")), "status", "verified", "version")
JSON_ROWS_KEY = "cities"  # a JSON import is an array, or {"cities": [...]}
SHEET = "cities"  # the sheet an XLSX import reads (else the workbook's first) and the export writes
# CSV has no types: the cells of numeric columns are read as numbers when they are written as one (else the
# text is kept, and validation names the column).
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
INTEGER_COLUMNS = frozenset({"geonames_id", "population", "capacity"})
DECIMAL_COLUMNS = frozenset({"latitude", "longitude"})


@dataclass(frozen=True)
class ImportedRow:
    line: int  # CSV line or sheet row (the header is 1), or JSON array position (from 1)
    fields: dict  # as given: validation names what is wrong
    city_id: str | None = None  # an export's `id`
    errors: tuple[dict, ...] = ()  # what is wrong before validation (a formula cell): the row is rejected


class Upload(upload.Upload):
    """The rows of an uploaded CSV, XLSX (its `cities` sheet) or JSON file as profile fields."""

    sheet, json_key, required = SHEET, JSON_ROWS_KEY, "name"

    def row(self, line: int, value: dict, errors: tuple[dict, ...]) -> ImportedRow:
        fields, city_id = _without_read_only(value) if self.media == "json" else row_to_fields(value)
        return ImportedRow(line, fields, city_id, errors)


def _without_read_only(row: dict) -> tuple[dict, str | None]:
    """A JSON row without what an export adds (its `id` apart), so that an export imports back."""
    city_id = row.get("id")
    fields = {k: v for k, v in row.items() if k not in READ_ONLY_FIELDS}
    if isinstance(indicators := fields.get("indicators"), dict):  # the export adds each indicator's unit
        fields["indicators"] = {
            k: {f: v for f, v in i.items() if f != "unit"} if isinstance(i, dict) else i for k, i in indicators.items()
        }
    return fields, city_id if isinstance(city_id, str) else None


def _number(text: str, pattern: re.Pattern, kind: type) -> int | float | str:
    return kind(text) if pattern.fullmatch(text) else text


def row_to_fields(row: dict[str, str]) -> tuple[dict, str | None]:
    """A CSV row's profile fields (and its `id`, from an export); unknown columns are kept so validation names them."""
    fields: dict = {}
    themes: dict = {}
    indicators: dict = {}
    contacts: dict = {}
    city_id = None
    for column, raw in row.items():
        value = restore(raw).strip() if isinstance(raw, str) else raw
        if value in ("", None):
            continue
        if column == "id":
            city_id = value
        elif column in READ_ONLY_COLUMNS:
            continue
        elif column in LIST_COLUMNS:
            fields[column] = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
        elif column.startswith(("offer_", "need_")) and column.split("_", 1)[1] in THEME_IDS:
            side, theme = column.split("_", 1)
            themes.setdefault(theme, {})[side] = _number(value, INTEGER, int)
        elif column.endswith("_year") and column[: -len("_year")] in INDICATORS:
            indicators.setdefault(column[: -len("_year")], {})["year"] = _number(value, INTEGER, int)
        elif column in INDICATORS:
            indicators.setdefault(column, {})["value"] = _number(value, DECIMAL, float)
        elif column in INTEGER_COLUMNS:
            fields[column] = _number(value, INTEGER, int)
        elif column in DECIMAL_COLUMNS:
            fields[column] = _number(value, DECIMAL, float)
        elif column.startswith("contact_"):
            contacts[column.removeprefix("contact_")] = value
        elif column == "demo":
            fields["demo"] = value.lower() in ("1", "true", "yes")
        else:
            fields[column] = value
    if themes:
        fields["themes"] = themes
    if indicators:
        fields["indicators"] = indicators
    if contacts:
        fields["contacts"] = contacts
    return fields, city_id


def export_row(profile: dict) -> dict:
    """A profile (as the API shows it, without contacts) as a row of EXPORT_COLUMNS."""
    row = {k: profile.get(k) for k in ("id", *SCALAR_COLUMNS, "status", "verified", "version")}
    for column in LIST_COLUMNS:
        row[column] = LIST_SEPARATOR.join(profile.get(column) or [])
    for theme, levels in (profile.get("themes") or {}).items():
        row[f"offer_{theme}"], row[f"need_{theme}"] = levels["offer"], levels["need"]
    for key, indicator in (profile.get("indicators") or {}).items():
        row[key], row[f"{key}_year"] = indicator["value"], indicator["year"]
    return row


def csv_header() -> str:
    return csv_text(EXPORT_COLUMNS, [], header=True)


def csv_rows(profiles: list[dict]) -> str:
    """Profiles as CSV lines in EXPORT_COLUMNS (the import's columns; contacts never), formulas defused."""
    return csv_text(EXPORT_COLUMNS, [export_row(p) for p in profiles])


# --------------------------------------------------------------------------- templates

# The template's example row (a test imports it: it must stay a valid profile).
EXAMPLE_ROW = {
    "external_id": "xian-001",
    "geonames_id": 1790630,
    "name": "Xi'an",
    "local_name": "西安",
    "country_code": "CN",
    "admin_region": "Shaanxi",
    "latitude": 34.26,
    "longitude": 108.93,
    "population": 12900000,
    "timezone": "Asia/Shanghai",
    "capacity": 5,
    "demo": False,
    "alternate_names": "Xi’an Shi|Chang'an",
    "languages": "zh",
    "corridors": "new_eurasian_land_bridge",
    "preferred_countries": "KZ|UZ",
    "excluded_countries": "",
    "offer_ai": 5,
    "need_ai": 1,
    "offer_ecommerce": 2,
    "need_ecommerce": 4,
    "internet_users_pct": 82.5,
    "internet_users_pct_year": 2023,
    "contact_office": "Foreign Affairs Office",
    "contact_email": "fao@xian.example",
    "contact_phone": "+86 29 8888 0000",
    "contact_website": "https://xa.example",
}


def _column_schema(column: str, properties: dict, defs: dict) -> dict:
    """The JSON schema of the profile field an import column fills."""
    if column in properties:
        return properties[column]
    if column.startswith("contact_"):
        return plain_schema(properties["contacts"], defs)["properties"][column.removeprefix("contact_")]
    if column.startswith(("offer_", "need_")):
        side, theme_id = column.split("_", 1)
        theme = defs["ThemeEntry"]["properties"][side]
        return {**theme, "description": f"{theme['description']}: theme {theme_id}"}
    if column.endswith("_year"):
        return {**defs["IndicatorIn"]["properties"]["year"], "description": f"Year of {column.removesuffix('_year')}"}
    label, unit, low, high = INDICATORS[column]
    return {"type": "number", "minimum": low, "maximum": high, "description": f"{label} ({unit})"}


def column_descriptions() -> list[dict]:
    """Each import column described from the profile's schema (CityFields): the XLSX template's `columns` sheet."""
    from citypair_profiles.schemas import CityFields

    return describe_columns(CityFields, COLUMNS, EXAMPLE_ROW, _column_schema)


def template_csv() -> str:
    return csv_text(COLUMNS, [EXAMPLE_ROW], header=True)


def template_xlsx() -> bytes:
    return template_workbook(SHEET, COLUMNS, EXAMPLE_ROW, column_descriptions())


# --------------------------------------------------------------------------- open data


def open_row(city: dict) -> dict:
    """A city as open data (`service.open_city`: only its public fields) as a row of the package's cities table."""
    row = {k: v for k, v in city.items() if k not in ("themes", "indicators", "partner_ids")}
    for column in LIST_COLUMNS:
        if column in row:
            row[column] = LIST_SEPARATOR.join(row[column])
    for theme, levels in (city.get("themes") or {}).items():
        row[f"offer_{theme}"], row[f"need_{theme}"] = levels["offer"], levels["need"]
    for key, indicator in (city.get("indicators") or {}).items():
        row[key], row[f"{key}_year"] = indicator["value"], indicator["year"]
    return row
