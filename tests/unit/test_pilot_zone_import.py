"""Pilot-zone imports without I/O: an export's rows read back as the fields it wrote, CSV as spreadsheets save it,
formula cells and bad versions refused by row and column, the templates, and which fields a row would change."""

import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from citypair_pilot_zones import service, tabular
from citypair_pilot_zones.models import Proposal
from citypair_pilot_zones.schemas import ProposalCreate, ProposalOut, ProposalUpdate
from citypair_shared.spreadsheet import DELIMITERS
from citypair_shared.upload import BadFile, TooManyRows, validated
from citypair_shared.xlsx import XLSX_MEDIA
from tests.unit.test_spreadsheets import ENCODINGS

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CITIES = ["city-a", "city-b"]
OUT = {
    "id": "p-1", "title": "=Xi'an–Almaty", "status": "draft", "city_ids": CITIES, "lead_city_id": "city-b",
    "members": [], "themes": ["ai", "ecommerce"], "objectives": ["Shared lab"], "activities": [],
    "budget": {"amount": 5.5, "currency": "CNY"}, "budget_public": True, "funding_sources": [],
    "start_date": "2026-01-01", "end_date": None, "milestones": [], "overdue_milestones": [], "kpis": [],
    "documents": [], "score_record": None, "coordinator_id": None, "stale": False, "stale_reasons": [],
    "last_activity_at": NOW, "version": 3, "created_at": NOW, "updated_at": NOW, "transitions": [],
    "allowed_transitions": [],
}  # fmt: skip
# What the export's columns carry of OUT, as an import reads them.
EXPORTED_FIELDS = {
    "title": "=Xi'an–Almaty",
    "lead_city_id": "city-b",
    "city_ids": CITIES,
    "themes": ["ai", "ecommerce"],
    "start_date": "2026-01-01",
    "budget": {"amount": 5.5, "currency": "CNY"},
    "budget_public": True,
}


def rows(body: bytes, media: str) -> list[tabular.ImportedRow]:
    upload = tabular.Upload(body, media)
    upload.check(100)
    return list(upload)


def workbook(header: list, *lines: list) -> bytes:
    book = Workbook()
    book.active.title = tabular.SHEET
    for line in [header, *lines]:
        book.active.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_csv_export_imports_back_as_the_fields_it_wrote():
    exported = tabular.csv_header() + tabular.csv_rows([ProposalOut.model_validate(OUT)])
    [row] = rows(exported.encode(), "csv")
    assert (row.line, row.fields, row.proposal_id, row.version, row.errors) == (2, EXPORTED_FIELDS, "p-1", 3, ())
    assert ProposalUpdate.model_validate(row.fields, strict=False).model_fields_set == set(EXPORTED_FIELDS)


def test_an_xlsx_export_imports_back_as_the_fields_it_wrote():
    from citypair_shared.xlsx import workbook_bytes

    body = workbook_bytes([(tabular.SHEET, tabular.COLUMNS, [tabular.row(ProposalOut.model_validate(OUT))])])
    [row] = rows(body, "xlsx")
    assert (row.fields, row.proposal_id, row.version) == (EXPORTED_FIELDS, "p-1", 3)


def test_a_json_export_imports_back_without_what_the_service_sets():
    item = ProposalOut.model_validate(OUT).model_dump_json(exclude={"allowed_transitions", "editable", "confirmable"})
    [row] = rows(f'{{"pilot_zones": [{item}, 7]}}'.encode(), "json")[:1]
    assert (row.proposal_id, row.version) == ("p-1", 3)
    assert set(row.fields) <= set(ProposalCreate.model_fields)
    assert ProposalCreate.model_validate(row.fields, strict=False).objectives == ["Shared lab"]
    assert rows(b"[7]", "json")[0].fields == {"__row__": 7}


@pytest.mark.parametrize("delimiter", list(DELIMITERS), ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_csv_as_spreadsheets_save_it(encoding, delimiter):
    text = delimiter.join(["title", "city_ids", "budget_amount", "budget_currency", "budget_public", "start_date"])
    text += "\r\n" + delimiter.join(["西安–阿拉木图", "a|b", "12.5", "cny", "Yes", "2026-01-01T00:00:00"]) + "\r\n"
    [row] = rows(ENCODINGS[encoding](text), "csv")
    assert row.fields == {
        "title": "西安–阿拉木图",
        "city_ids": ["a", "b"],
        "budget": {"amount": 12.5, "currency": "cny"},
        "budget_public": True,
        "start_date": "2026-01-01",
    }


def test_cells_that_are_no_value_stay_text_for_validation_to_name():
    [row] = rows(b"title,city_ids,budget_amount,budget_public,colour\nT,a|b,lots,maybe,red\n", "csv")
    [(_, errors)] = validated(iter([row]), 10, lambda _: ProposalCreate)
    assert sorted(e["field"] for e in errors) == ["budget.amount", "budget.currency", "budget_public", "colour"]


def test_a_formula_cell_and_a_bad_version_are_refused_by_row_and_column():
    header = ["title", "city_ids", "themes", "version"]
    body = workbook(header, ["T", "a|b", "=A1", "two"], ["U", "a|b", "ai", 2], ["V", "", "", "²"])
    formula, plain, superscript = rows(body, "xlsx")
    assert [e["field"] for e in superscript.errors] == ["version"] and superscript.version is None
    assert [e["field"] for e in formula.errors] == ["themes", "version"]
    assert "cell C2 holds a formula (=A1)" in formula.errors[0]["message"]
    assert (plain.errors, plain.version, plain.fields["themes"]) == ((), 2, ["ai"])
    [(_, errors)] = validated(iter([formula]), 10, lambda _: ProposalCreate)
    assert errors == list(formula.errors), "a row refused before validation keeps its reasons"


@pytest.mark.parametrize(
    "body, media, says",
    [
        (b"name,city_ids\nT,a|b\n", "csv", "`title` column"),
        (workbook(["column", "type"]), "xlsx", "`title` column"),
        (b"title,title\nT,U\n", "csv", "repeats the column"),
        (b'{"cities": []}', "json", '{"pilot_zones": [...]}'),
        (b"\xff\xfe\xff", "json", "not UTF-8"),
    ],
)
def test_a_file_refused_whole_says_why(body, media, says):
    with pytest.raises(BadFile, match=says.replace("[", r"\[").replace("{", r"\{")):
        tabular.Upload(body, media).check(10)


def test_the_row_cap_counts_rows_not_lines():
    body = b"title\n" + b"T\n" * 5
    assert tabular.Upload(body, "csv").check(5) == 5
    with pytest.raises(TooManyRows):
        tabular.Upload(body, "csv").check(4)


def test_the_templates_hold_the_import_columns_and_an_example_that_validates():
    [row] = rows(tabular.template_csv().encode(), "csv")
    draft = ProposalCreate.model_validate(row.fields, strict=False)
    assert draft.budget.currency == "CNY" and draft.lead_city_id == draft.city_ids[0]
    body = tabular.template_xlsx()
    assert [r.fields for r in rows(body, "xlsx")] == [row.fields]
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == [tabular.SHEET, "columns"]
    described = {r[0]: r for r in book["columns"].iter_rows(min_row=2, values_only=True)}
    assert list(described) == list(tabular.IMPORT_COLUMNS)
    assert {c for c, r in described.items() if r[2] == "yes"} == {"title", "city_ids"}
    assert described["start_date"][1] == "string (a date: YYYY-MM-DD)"
    assert described["budget_currency"][1].startswith("string (one of")
    assert XLSX_MEDIA.endswith("sheet")


def stored(**overrides) -> Proposal:
    values = dict(
        title="T", city_ids=CITIES, lead_city_id="city-a", themes=["ai"], objectives=[], activities=[],
        budget_amount=5.5, budget_currency="CNY", budget_public=False, funding_sources=[],
        start_date=date(2026, 1, 1), end_date=None, milestones=[], kpis=[], documents=[],
    )  # fmt: skip
    return Proposal(**{**values, **overrides})


@pytest.mark.parametrize(
    "given, changed",
    [
        ({"title": "T", "city_ids": CITIES, "lead_city_id": "city-a", "themes": ["ai"]}, set()),
        ({"budget": {"amount": 5.5, "currency": "cny"}, "start_date": "2026-01-01", "budget_public": False}, set()),
        ({"title": "T2", "themes": ["ai"]}, {"title"}),
        ({"budget": {"amount": 6, "currency": "CNY"}}, {"budget"}),
        ({"end_date": "2027-01-01", "lead_city_id": "city-b"}, {"end_date", "lead_city_id"}),
    ],
)
def test_only_the_fields_a_row_changes_are_an_edit(given, changed):
    data = ProposalUpdate.model_validate(given)
    narrowed = service.only_changes(stored(), data)
    assert narrowed.model_fields_set == changed
    assert all(getattr(narrowed, name) == getattr(data, name) for name in changed)
