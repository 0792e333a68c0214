"""CSV and JSON rows ⇄ profile fields. Pure: no I/O beyond the bytes given.

An upload is read a row at a time, as often as needed (a check of the whole file, then the import in
batches), so that no more than a batch of rows is ever in memory; exports are written a batch at a time.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from citypair_shared import strict_json
from citypair_shared.geography import INDICATORS
from citypair_shared.spreadsheet import UnreadableText, csv_text, open_csv, restore
from citypair_shared.themes import THEME_IDS
from citypair_shared.xlsx import BadWorkbook, SheetReader, workbook_bytes

LIST_SEPARATOR = "|"
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
EXTRA_CELLS = "cells past the last column"


class BadFile(ValueError):
    """The file as a whole cannot be read (not one row: the whole thing)."""


class TooManyRows(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"an import takes at most {limit:,} rows; split the file")
        self.limit = limit


@dataclass(frozen=True)
class ImportedRow:
    line: int  # CSV line or sheet row (the header is 1), or JSON array position (from 1)
    fields: dict  # as given: validation names what is wrong
    city_id: str | None = None  # an export's `id`
    errors: tuple[dict, ...] = ()  # what is wrong before validation (a formula cell): the row is rejected


def _formula_errors(formulas: dict[str, tuple[str, str]]) -> tuple[dict, ...]:
    return tuple(
        {
            "field": column,
            "message": f"cell {cell} holds a formula ({formula[:100]}); an import takes values only: paste its value",
        }
        for column, (cell, formula) in formulas.items()
    )


def _checked_header(header: list[str] | None, what: str) -> None:
    if header and any("\x00" in column for column in header if isinstance(column, str)):
        raise BadFile("the header contains the NUL character (U+0000)")
    if not header or "name" not in header:
        raise BadFile(f"{what} needs a header row with at least a `name` column")
    if repeated := sorted({c for c in header if header.count(c) > 1}):
        raise BadFile(f"the header repeats the column {repeated[0]!r}")


class Upload:
    """The rows of an uploaded CSV, XLSX or JSON file, read afresh on each pass over it."""

    def __init__(self, body: bytes, media: Literal["csv", "xlsx", "json"]):
        self._body, self.media = body, media
        self._text: str | None = None

    def __iter__(self) -> Iterator[ImportedRow]:
        if self.media == "csv":
            for line, row in self._csv_records():
                fields, city_id = row_to_fields(row)
                yield ImportedRow(line, fields, city_id)
        elif self.media == "xlsx":
            for row in self._xlsx_records():
                fields, city_id = row_to_fields(row.cells)
                yield ImportedRow(row.number, fields, city_id, _formula_errors(row.formulas))
        else:
            for position, item in self._json_items():
                if isinstance(item, dict):
                    fields, city_id = _without_read_only(item)
                    yield ImportedRow(position, fields, city_id)
                else:
                    yield ImportedRow(position, {"__row__": item})

    def check(self, max_rows: int) -> int:
        """Read the whole file once: its row count, BadFile if it cannot be read, TooManyRows past `max_rows`."""
        count = 0
        records = {"csv": self._csv_records, "xlsx": self._xlsx_records, "json": self._json_items}[self.media]
        for count, _ in enumerate(records(), start=1):
            if count > max_rows:
                raise TooManyRows(max_rows)
        return count

    def _csv_records(self) -> Iterator[tuple[int, dict]]:
        try:
            text, delimiter = open_csv(self._body)
        except UnreadableText as exc:
            raise BadFile(str(exc)) from exc
        reader = csv.DictReader(text, restkey=EXTRA_CELLS, delimiter=delimiter)
        try:
            _checked_header(reader.fieldnames, "a CSV import")
            for row in reader:
                # no text may hold U+0000 (PostgreSQL cannot store it; see citypair_shared.deps)
                if any("\x00" in v for v in row.values() if isinstance(v, str)):
                    raise BadFile(f"the file contains the NUL character (U+0000) on line {reader.line_num}")
                yield reader.line_num, row
        except csv.Error as exc:
            raise BadFile(f"not CSV (line {reader.line_num}): {exc}") from exc
        except UnicodeDecodeError as exc:
            raise BadFile(f"the file is not text in its encoding (after line {reader.line_num})") from exc

    def _xlsx_records(self) -> Iterator:
        try:
            sheet = SheetReader(self._body, sheet=SHEET, rest=EXTRA_CELLS)
            _checked_header(sheet.header(), "an XLSX import (its `cities` sheet, or its first)")
            for row in sheet.rows():
                if any("\x00" in v for v in row.cells.values() if isinstance(v, str)):
                    raise BadFile(f"the sheet contains the NUL character (U+0000) in row {row.number}")
                yield row
        except BadWorkbook as exc:
            raise BadFile(str(exc)) from exc

    def _json_items(self) -> Iterator[tuple[int, object]]:
        if self._text is None:
            try:
                self._text = self._body.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise BadFile("the file is not UTF-8") from exc
            self._body = b""  # the text is what is read from now on
        try:
            for loc, item in strict_json.array_items(self._text, under=JSON_ROWS_KEY):
                yield loc[-1] + 1, item
        except ValueError as exc:
            if isinstance(exc, strict_json.BadJson):
                raise
            raise BadFile(f'a JSON import is an array of profiles (or {{"{JSON_ROWS_KEY}": [...]}})') from exc


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
DESCRIPTION_COLUMNS = ("column", "type", "required", "example", "description")


def _plain(schema: dict, defs: dict) -> dict:
    """The schema with references followed and `null` left out of a choice (an empty cell is null)."""
    if ref := schema.get("$ref"):
        return _plain(defs[ref.rsplit("/", 1)[-1]], defs)
    if choices := [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]:
        return {**schema, **_plain(choices[0], defs)}
    return schema


def _type_text(schema: dict, defs: dict) -> str:
    schema = _plain(schema, defs)
    if schema.get("type") == "array":
        return f"list of {_type_text(schema['items'], defs)}, separated by {LIST_SEPARATOR}"
    text = schema.get("type", "string")
    if enum := schema.get("enum"):
        text += f" (one of: {', '.join(enum)})" if len(enum) <= 20 else f" (one of {len(enum)} codes)"
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "minLength", "maxLength") if k in schema]
    return text + (f"; {', '.join(bounds)}" if bounds else "")


def column_descriptions() -> list[dict]:
    """Each import column with its type, whether it is required, an example and a description: read from the
    profile's schema (CityFields), so that the template cannot drift from what an import accepts."""
    from citypair_profiles.schemas import CityFields

    schema = CityFields.model_json_schema()
    defs, properties, required = schema["$defs"], schema["properties"], set(schema["required"])
    nested = {name: _plain(properties[name], defs) for name in ("contacts",)}
    theme, indicator = defs["ThemeEntry"]["properties"], defs["IndicatorIn"]["properties"]
    out = []
    for column in COLUMNS:
        if column in properties:
            field = properties[column]
        elif column.startswith("contact_"):
            field = nested["contacts"]["properties"][column.removeprefix("contact_")]
        elif column.startswith(("offer_", "need_")):
            side, theme_id = column.split("_", 1)
            field = {**theme[side], "description": f"{theme[side]['description']}: theme {theme_id}"}
        elif column.endswith("_year"):
            field = {**indicator["year"], "description": f"Year of {column.removesuffix('_year')}"}
        else:
            label, unit, low, high = INDICATORS[column]
            field = {"type": "number", "minimum": low, "maximum": high, "description": f"{label} ({unit})"}
        plain = _plain(field, defs)
        out.append(
            {
                "column": column,
                "type": _type_text(field, defs),
                "required": "yes" if column in required else "no",
                "example": EXAMPLE_ROW.get(column, ""),
                "description": plain.get("description") or field.get("description") or plain.get("title", ""),
            }
        )
    return out


def template_csv() -> str:
    return csv_text(COLUMNS, [EXAMPLE_ROW], header=True)


def template_xlsx() -> bytes:
    return workbook_bytes([(SHEET, COLUMNS, [EXAMPLE_ROW]), ("columns", DESCRIPTION_COLUMNS, column_descriptions())])


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
