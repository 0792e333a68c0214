"""CSV exports a spreadsheet opens as data (OWASP CSV injection): every text cell that would start a formula is
written behind a `'`, numbers stay numbers, and the import takes the `'` off again (an export imports back)."""

import csv
import io
from datetime import UTC, datetime

import pytest

from citypair_pilot_zones import tabular as proposal_csv
from citypair_pilot_zones.schemas import ProposalOut
from citypair_profiles import tabular as city_csv
from citypair_shared.spreadsheet import FORMULA_STARTS, defuse, restore

PAYLOADS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1", "\r=1"]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=1+1", "''=1+1"),  # a quote already there is kept: restore gives back exactly this
        ("'s-Hertogenbosch", "'s-Hertogenbosch"),  # a name that starts with a quote is no formula
        ("Xi'an", "Xi'an"),
        ("", ""),
    ],
)
def test_a_cell_that_would_start_a_formula_is_written_behind_a_quote_and_read_back_as_it_was(text, written):
    assert defuse(text) == written
    assert restore(written) == text


def test_numbers_are_no_formulas():
    assert defuse(-33.87) == -33.87 and defuse(-5) == -5


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                float(cell)  # only a number may start with `-` or `+`: a spreadsheet reads it as one


def city_profile(payload: str) -> dict:
    """A profile with `payload` in every text field the export writes (numbers negative where they may be)."""
    return {
        "id": payload,
        "external_id": payload,
        "name": payload,
        "local_name": payload,
        "country_code": payload,
        "admin_region": payload,
        "timezone": payload,
        "latitude": -33.87,
        "longitude": -151.21,
        "population": 5_000_000,
        "capacity": 3,
        "alternate_names": [payload.replace(city_csv.LIST_SEPARATOR, "/"), "plain"],  # `|` separates a list
        "languages": [payload],
        "corridors": [payload],
        "preferred_countries": [payload],
        "excluded_countries": [payload],
        "themes": {"ai": {"offer": 5, "need": 1}},
        "indicators": {"internet_users_pct": {"value": 82.5, "unit": "%", "year": 2023}},
        "status": payload,
        "verified": False,
        "version": 2,
    }


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_text_column_of_the_cities_export_is_defused(payload):
    profile = city_profile(payload)
    rows = cells(city_csv.csv_header() + city_csv.csv_rows([profile]))
    assert_no_formula(rows)
    row = dict(zip(rows[0], rows[1], strict=True))
    text_columns = [c for c, v in city_csv.export_row(profile).items() if isinstance(v, str) and v]
    assert len(text_columns) == 13
    for column in text_columns:
        assert row[column].startswith("'"), column
    assert row["latitude"] == "-33.87"  # a number stays a number


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_import_reads_a_defused_export_back_as_it_was(payload):
    payload = payload.strip()  # as the import (and the API) strips every cell
    profile = city_profile(payload)
    [row] = city_csv.Upload((city_csv.csv_header() + city_csv.csv_rows([profile])).encode(), "csv")
    assert row.city_id == payload
    for field in ("external_id", "name", "local_name", "admin_region", "timezone", "country_code"):
        assert row.fields[field] == payload, field
    assert row.fields["alternate_names"] == [payload.replace(city_csv.LIST_SEPARATOR, "/"), "plain"]
    assert (row.fields["latitude"], row.fields["longitude"]) == (-33.87, -151.21)
    assert not {"status", "verified", "version", "id"} & set(row.fields)  # read-only columns are ignored


def proposal(payload: str) -> ProposalOut:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ProposalOut.model_validate(
        {
            "id": payload, "title": payload, "status": "active", "city_ids": [payload, "city-b"],
            "lead_city_id": payload, "members": [], "themes": ["ai"], "objectives": [], "activities": [],
            "budget": {"amount": 5.5, "currency": "CNY"}, "budget_public": False, "funding_sources": [],
            "start_date": "2025-01-01", "end_date": None,
            "milestones": [{"title": payload, "due_date": "2025-06-01", "status": "planned"}],
            "overdue_milestones": [payload], "kpis": [], "documents": [],
            "score_record": {"score": 0.5, "factors": {}, "weights_version": payload},
            "coordinator_id": payload, "stale": False, "stale_reasons": [], "last_activity_at": now,
            "version": 3, "created_at": now, "updated_at": now, "transitions": [], "allowed_transitions": [],
        }
    )  # fmt: skip


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_text_column_of_the_pilot_zones_export_is_defused(payload):
    out = proposal(payload)
    rows = cells(proposal_csv.csv_header() + proposal_csv.csv_rows([out]))
    assert_no_formula(rows)
    row = dict(zip(rows[0], rows[1], strict=True))
    written = proposal_csv.row(out)
    text_columns = [c for c, v in written.items() if isinstance(v, str) and v.startswith(payload)]
    assert set(text_columns) >= {"id", "title", "lead_city_id", "city_ids", "coordinator_id", "overdue_milestones"}
    for column in text_columns:
        assert row[column] == "'" + written[column], column
