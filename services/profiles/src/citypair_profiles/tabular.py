"""CSV and JSON rows ⇄ profile fields. Pure: no I/O beyond the text given."""

import csv
import io
import json

from citypair_shared.geography import INDICATORS
from citypair_shared.themes import THEME_IDS

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


class BadFile(ValueError):
    """The file as a whole cannot be read (not one row: the whole thing)."""


def parse_csv(text: str) -> list[tuple[int, dict]]:
    """Rows as (line number, profile fields); unknown columns are kept so validation names them."""
    if "\x00" in text:  # no text may hold U+0000 (PostgreSQL cannot store it; see citypair_shared.deps.reject_nul)
        raise BadFile("the file contains the NUL character (U+0000)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise BadFile("a CSV import needs a header row with at least a `name` column")
        return [(reader.line_num, row_to_fields(row)) for row in reader]
    except csv.Error as exc:
        raise BadFile(f"not CSV (line {reader.line_num}): {exc}") from exc


def parse_json(text: str) -> list[tuple[int, dict]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadFile(f"not JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("cities"), list):
        data = data["cities"]
    if not isinstance(data, list):
        raise BadFile('a JSON import is an array of profiles (or {"cities": [...]})')
    return [(i, row if isinstance(row, dict) else {"__row__": row}) for i, row in enumerate(data, start=1)]


def row_to_fields(row: dict[str, str]) -> dict:
    fields: dict = {}
    themes: dict = {}
    indicators: dict = {}
    contacts: dict = {}
    for column, raw in row.items():
        value = (raw or "").strip() if isinstance(raw, str) else raw
        if value in ("", None):
            continue
        if column in LIST_COLUMNS:
            fields[column] = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
        elif column.startswith(("offer_", "need_")) and column.split("_", 1)[1] in THEME_IDS:
            side, theme = column.split("_", 1)
            themes.setdefault(theme, {})[side] = value
        elif column.endswith("_year") and column[: -len("_year")] in INDICATORS:
            indicators.setdefault(column[: -len("_year")], {})["year"] = value
        elif column in INDICATORS:
            indicators.setdefault(column, {})["value"] = value
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
    return fields


def to_csv(profiles: list[dict]) -> str:
    """The directory as CSV, in the same columns the import reads (contacts never exported)."""
    out = io.StringIO()
    columns = [c for c in COLUMNS if not c.startswith("contact_")]
    writer = csv.DictWriter(out, fieldnames=["id", *columns, "status", "verified", "version"], extrasaction="ignore")
    writer.writeheader()
    for p in profiles:
        row = {k: p.get(k) for k in ("id", *SCALAR_COLUMNS, "status", "verified", "version")}
        for column in LIST_COLUMNS:
            row[column] = LIST_SEPARATOR.join(p.get(column) or [])
        for theme, levels in (p.get("themes") or {}).items():
            row[f"offer_{theme}"], row[f"need_{theme}"] = levels["offer"], levels["need"]
        for key, indicator in (p.get("indicators") or {}).items():
            row[key], row[f"{key}_year"] = indicator["value"], indicator["year"]
        writer.writerow(row)
    return out.getvalue()
