"""Proposals as CSV and spreadsheet rows, and an import's rows as proposal fields. Pure: no I/O beyond the bytes
given (citypair_shared.upload reads the file)."""

import re
from dataclasses import dataclass

from citypair_pilot_zones.schemas import ProposalCreate, ProposalOut
from citypair_shared import upload
from citypair_shared.problems import rule_error
from citypair_shared.spreadsheet import csv_text, restore
from citypair_shared.upload import LIST_SEPARATOR, describe_columns, template_workbook

SHEET = "pilot zones"  # the sheet of an XLSX export, and the one an import reads (else the workbook's first)
JSON_ROWS_KEY = "pilot_zones"  # a JSON import is an array, or {"pilot_zones": [...]}
COLUMNS = (
    "id",
    "title",
    "status",
    "lead_city_id",
    "city_ids",
    "themes",
    "start_date",
    "end_date",
    "budget_amount",
    "budget_currency",
    "budget_public",
    "coordinator_id",
    "milestones",
    "overdue_milestones",
    "kpis",
    "stale",
    "score",
    "weights_version",
    "version",
    "created_at",
    "updated_at",
)


def row(p: ProposalOut) -> dict:
    return {
        "id": p.id,
        "title": p.title,
        "status": p.status.value,
        "lead_city_id": p.lead_city_id,
        "city_ids": LIST_SEPARATOR.join(p.city_ids),
        "themes": LIST_SEPARATOR.join(p.themes),
        "start_date": p.start_date.isoformat() if p.start_date else "",
        "end_date": p.end_date.isoformat() if p.end_date else "",
        "budget_amount": "" if p.budget is None else p.budget.amount,
        "budget_currency": "" if p.budget is None else p.budget.currency,
        "budget_public": str(p.budget_public).lower(),
        "coordinator_id": p.coordinator_id or "",
        "milestones": len(p.milestones),
        "overdue_milestones": LIST_SEPARATOR.join(p.overdue_milestones),
        "kpis": len(p.kpis),
        "stale": str(p.stale).lower(),
        "score": "" if p.score_record is None else p.score_record.score,
        "weights_version": "" if p.score_record is None else p.score_record.weights_version,
        "version": p.version,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }


def csv_header() -> str:
    return csv_text(COLUMNS, [], header=True)


def csv_rows(proposals: list[ProposalOut]) -> str:
    """Proposals as CSV lines in COLUMNS, text cells that would start a spreadsheet formula defused."""
    return csv_text(COLUMNS, [row(p) for p in proposals])


def open_row(item: dict) -> dict:
    """A pilot zone as open data (`service.open_data`'s item) as a row of the Data Package's pilot-zones table."""
    cities, budget = item["cities"], item["budget"]
    return {
        "id": item["id"],
        "title": item["title"],
        "status": item["status"],
        "lead_city_id": item["lead_city_id"],
        "city_ids": LIST_SEPARATOR.join(c["id"] for c in cities),
        "city_names": LIST_SEPARATOR.join(c["name"] or "" for c in cities),
        "country_codes": LIST_SEPARATOR.join(c["country_code"] or "" for c in cities),
        "themes": LIST_SEPARATOR.join(item["themes"]),
        "start_date": item["start_date"].isoformat() if item["start_date"] else None,
        "end_date": item["end_date"].isoformat() if item["end_date"] else None,
        "budget_amount": budget["amount"] if budget else None,
        "budget_currency": budget["currency"] if budget else None,
    }


# --------------------------------------------------------------------------- imports

# The export's columns that the service sets: an import of an export ignores them, but for `id` (the proposal the
# row edits, if it is still here) and `version` (the version exported: the edit's `If-Match`).
READ_ONLY_COLUMNS = frozenset(
    {"id", "status", "coordinator_id", "milestones", "overdue_milestones", "kpis", "stale", "score"}
    | {"weights_version", "version", "created_at", "updated_at"}
)
# What an import writes: the export's other columns (the JSON import takes every field of a draft).
IMPORT_COLUMNS = tuple(c for c in COLUMNS if c not in READ_ONLY_COLUMNS)
READ_ONLY_FIELDS = frozenset(ProposalOut.model_fields) - set(ProposalCreate.model_fields)
LIST_COLUMNS = ("city_ids", "themes")
DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
MIDNIGHT = "T00:00:00"  # after a date a spreadsheet turned into a date cell (the sheet reads it as a datetime)


@dataclass(frozen=True)
class ImportedRow:
    line: int  # CSV line or sheet row (the header is 1), or JSON array position (from 1)
    fields: dict  # as given: validation names what is wrong
    proposal_id: str | None = None  # an export's `id`
    version: int | None = None  # an export's `version`
    errors: tuple[dict, ...] = ()  # what is wrong before validation (a formula cell): the row is rejected


class Upload(upload.Upload):
    """The rows of an uploaded CSV, XLSX (its `pilot zones` sheet) or JSON file as proposal fields."""

    sheet, json_key, required = SHEET, JSON_ROWS_KEY, "title"

    def row(self, line: int, value: dict, errors: tuple[dict, ...]) -> ImportedRow:
        if self.media == "json":
            fields = {k: v for k, v in value.items() if k not in READ_ONLY_FIELDS}
            proposal_id, version = value.get("id"), value.get("version")
        else:
            fields, proposal_id, version = row_to_fields(value)
        if version is not None and (type(version) is not int or version < 1):
            message = "a version is a whole number from 1 (an export's)"
            errors += (rule_error("version", message, code="version_not_whole_number"),)
            version = None
        return ImportedRow(line, fields, proposal_id if isinstance(proposal_id, str) else None, version, errors)


def _cell(column: str, value: str):
    """A cell as the field's value: lists split, numbers and booleans read (else the text, which validation names)."""
    if column in LIST_COLUMNS:
        return [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
    if column == "budget_amount":
        return float(value) if DECIMAL.fullmatch(value) else value
    if column == "budget_public":
        return BOOLEANS.get(value.lower(), value)
    if column in ("start_date", "end_date"):
        return value.removesuffix(MIDNIGHT)
    return value


def row_to_fields(row: dict) -> tuple[dict, str | None, int | str | None]:
    """A CSV or sheet row's proposal fields, its `id` and its `version` (an export's); empty cells are not given,
    unknown columns are kept so that validation names them."""
    fields: dict = {}
    budget: dict = {}
    proposal_id = version = None
    for column, raw in row.items():
        value = restore(raw).strip() if isinstance(raw, str) else raw
        if value in ("", None):
            continue
        if column == "id":
            proposal_id = value
        elif column == "version":
            version = int(value) if value.isdecimal() else value
        elif column in READ_ONLY_COLUMNS:
            continue
        elif column in ("budget_amount", "budget_currency"):
            budget[column.removeprefix("budget_")] = _cell(column, value)
        elif isinstance(value, str):
            fields[column] = _cell(column, value)
        else:
            fields[column] = value  # cells past the header: validation names them
    if budget:
        fields["budget"] = budget
    return fields, proposal_id, version


# --------------------------------------------------------------------------- templates

# The template's example row (a test imports it with real cities in place of these ids).
EXAMPLE_ROW = {
    "title": "Xi'an – Almaty cross-border e-commerce pilot zone",
    "lead_city_id": "00000000-0000-4000-8000-000000000001",
    "city_ids": "00000000-0000-4000-8000-000000000001|00000000-0000-4000-8000-000000000002",
    "themes": "ecommerce|logistics",
    "start_date": "2026-01-01",
    "end_date": "2027-12-31",
    "budget_amount": 5000000,
    "budget_currency": "CNY",
    "budget_public": False,
}
# What the schema does not say of a column.
DESCRIPTIONS = {
    "title": "The proposal's title",
    "city_ids": "Member cities (2 to 8; ids from the directory, `id` in a cities export), the lead first; one of "
    "them must be a city you are an official of",
    "themes": "Themes of the shared taxonomy",
    "start_date": "When the pilot zone starts",
    "end_date": "When it ends (not before the start)",
    "budget_amount": "The budget (0 or more), with its currency",
    "budget_currency": "ISO 4217 code of the budget's currency",
}


def _column_schema(column: str, properties: dict, defs: dict) -> dict:
    """The JSON schema of the draft's field an import column fills (with what the schema does not say of it)."""
    field = properties.get(column) or defs["ProposalBudget"]["properties"][column.removeprefix("budget_")]
    return {**field, "description": DESCRIPTIONS[column]} if column in DESCRIPTIONS else field


def column_descriptions() -> list[dict]:
    """Each import column described from the draft's schema (ProposalCreate): the XLSX template's `columns` sheet."""
    return describe_columns(ProposalCreate, IMPORT_COLUMNS, EXAMPLE_ROW, _column_schema)


def template_csv() -> str:
    return csv_text(IMPORT_COLUMNS, [EXAMPLE_ROW], header=True)


def template_xlsx() -> bytes:
    return template_workbook(SHEET, IMPORT_COLUMNS, EXAMPLE_ROW, column_descriptions())
