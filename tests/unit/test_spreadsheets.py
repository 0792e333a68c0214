"""Files as spreadsheets save them: CSV in each encoding and delimiter, XLSX workbooks both ways (formulas defused
on export, refused on import), the bad files, and the import templates."""

import codecs
import csv
import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from citypair_profiles import tabular
from citypair_profiles.schemas import CityCreate, CityFields
from citypair_shared.spreadsheet import DELIMITERS, UnreadableText, csv_delimiter, text_encoding
from citypair_shared.upload import ImportRow, validated
from citypair_shared.xlsx import XLSX_MEDIA, WorkbookWriter, workbook_bytes

NAMES = ["Xi'an", "西安", "Алматы", 'Ürümqi; "old", town']
ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16 LE with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16 BE with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "gb18030": lambda text: text.encode("gb18030"),
}


def csv_file(rows: list[dict], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def imported(body: bytes, media: str) -> list[tabular.ImportedRow]:
    upload = tabular.Upload(body, media)
    upload.check(1000)
    return list(upload)


def profile_rows() -> list[dict]:
    return [
        {"name": name, "country_code": "CN", "latitude": "34.5", "population": str(1000 + i), "languages": "zh|ru"}
        for i, name in enumerate(NAMES)
    ]


@pytest.mark.parametrize("delimiter", list(DELIMITERS), ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_csv_is_read_in_every_encoding_and_delimiter_spreadsheets_save(encoding, delimiter):
    body = ENCODINGS[encoding](csv_file(profile_rows(), delimiter))
    rows = imported(body, "csv")
    assert [r.fields["name"] for r in rows] == NAMES
    assert rows[0].fields == {"name": "Xi'an", "country_code": "CN", "latitude": 34.5, "population": 1000,
                              "languages": ["zh", "ru"]}  # fmt: skip
    assert [r.line for r in rows] == [2, 3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(
        st.text(st.characters(codec="gb18030", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
            str.strip
        ),
        min_size=1,
        max_size=5,
    ),
    encoding=st.sampled_from(list(ENCODINGS)),
    delimiter=st.sampled_from(list(DELIMITERS)),
)
def test_any_names_survive_any_encoding_and_delimiter(names, encoding, delimiter):
    rows = [{"name": n, "country_code": "KZ", "population": "7"} for n in names]
    body = ENCODINGS[encoding](csv_file(rows, delimiter))
    assert [r.fields["name"] for r in imported(body, "csv")] == [n.strip() for n in names]


def test_the_encoding_is_named_by_the_bom_else_the_first_that_decodes():
    assert text_encoding(codecs.BOM_UTF8 + b"name") == "utf-8-sig"
    assert text_encoding(codecs.BOM_UTF16_LE + "name".encode("utf-16-le")) == "utf-16"
    assert text_encoding(codecs.BOM_UTF16_BE + "name".encode("utf-16-be")) == "utf-16"
    assert text_encoding("name\n西安".encode()) == "utf-8"
    assert text_encoding("name\n西安".encode("gb18030")) == "gb18030"
    with pytest.raises(UnreadableText):
        text_encoding(b"name\n\xff\xff\xff")


def test_the_delimiter_falls_back_to_the_header_when_the_sniffer_cannot_tell():
    assert csv_delimiter("name") == ","
    assert csv_delimiter("name;country_code") == ";"
    assert csv_delimiter("name\tcountry_code\n") == "\t"


def test_unreadable_text_is_a_bad_file():
    with pytest.raises(tabular.BadFile, match="UTF-8, UTF-16"):
        imported(b"name\n\xff\xfe\xff\x80\x80", "csv")
    with pytest.raises(tabular.BadFile, match="U\\+0000"):
        imported("name\nA\x00B\n".encode("utf-16"), "csv")


# --------------------------------------------------------------------------- XLSX


def exported_workbook(profiles: list[dict]) -> bytes:
    book = WorkbookWriter()
    book.add_sheet(tabular.SHEET, tabular.EXPORT_COLUMNS).append([tabular.export_row(p) for p in profiles])
    with book.save() as saved:
        return saved.read()


PROFILE = {
    "id": "c1",
    "name": '=HYPERLINK("http://evil")',
    "country_code": "CN",
    "latitude": 34.26,
    "longitude": 108.93,
    "population": 12_900_000,
    "alternate_names": ["@SUM(A1)", "Chang'an"],
    "themes": {"ai": {"offer": 5, "need": 1}},
    "indicators": {"internet_users_pct": {"value": 82.5, "year": 2023}},
    "demo": True,
    "status": "published",
    "verified": False,
    "version": 3,
}


def test_an_xlsx_export_holds_no_formula_and_imports_back_as_it_was():
    body = exported_workbook([PROFILE])
    sheet = load_workbook(io.BytesIO(body))[tabular.SHEET]
    cells = {c.value: c for c in sheet[2]}
    assert '\'=HYPERLINK("http://evil")' in cells and cells['\'=HYPERLINK("http://evil")'].data_type == "s"
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    [row] = imported(body, "xlsx")
    assert row.line == 2 and row.city_id == "c1" and not row.errors
    assert row.fields == {
        "name": PROFILE["name"],
        "country_code": "CN",
        "latitude": 34.26,
        "longitude": 108.93,
        "population": 12_900_000,
        "alternate_names": ["@SUM(A1)", "Chang'an"],
        "themes": {"ai": {"offer": 5, "need": 1}},
        "indicators": {"internet_users_pct": {"value": 82.5, "year": 2023}},
        "demo": True,
    }


def test_cells_edited_in_openpyxl_are_read_as_edited():
    book = load_workbook(io.BytesIO(exported_workbook([PROFILE, {**PROFILE, "id": "c2", "name": "Almaty"}])))
    sheet = book[tabular.SHEET]
    column = {c.value: c.column for c in sheet[1]}
    sheet.cell(row=3, column=column["population"], value=2_000_001)
    sheet.cell(row=3, column=column["need_ai"], value=4)
    out = io.BytesIO()
    book.save(out)
    first, second = imported(out.getvalue(), "xlsx")
    assert first.fields["population"] == 12_900_000
    assert second.fields["population"] == 2_000_001 and second.fields["themes"]["ai"] == {"offer": 5, "need": 4}


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_formula_cell_is_refused_by_its_column_and_cell():
    body = workbook(
        ("cities", [["name", "country_code", "population"], ["Xi'an", "CN", "=1+1"], ["Almaty", "KZ", 2000000]])
    )
    first, second = imported(body, "xlsx")
    assert first.errors == (
        {
            "field": "population",
            "message": "cell C2 holds a formula (=1+1); an import takes values only: paste its value",
            "type": "cell_formula",
            "params": {"cell": "C2", "formula": "=1+1"},
        },
    )
    assert not second.errors and second.fields["population"] == 2_000_000


def test_a_rows_validation_errors_carry_their_type_and_values():
    body = "name,country_code,latitude,longitude,population,colour\nXi'an,XX,34.2,108.9,many,red\n,CN,1,2,3,\n"
    bad, unnamed = validated(iter(imported(body.encode(), "csv")), 10, lambda _: CityCreate)
    assert bad[1] == [
        {
            "field": "country_code",
            "message": "'XX' is not an ISO 3166-1 alpha-2 country code",
            "type": "unknown_country",
            "params": {"value": "XX"},
        },
        {
            "field": "population",
            "message": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        },
        {"field": "colour", "message": "Extra inputs are not permitted", "type": "extra_forbidden"},
    ]
    assert unnamed[1] == [{"field": "name", "message": "Field required", "type": "missing"}]
    reported = ImportRow(line=2, action="rejected", errors=bad[1]).model_dump(exclude_none=True)["errors"]
    assert reported == bad[1], "the report carries them"


def test_the_cities_sheet_is_read_wherever_it_is_else_the_first():
    rows = [["name", "country_code"], ["Xi'an", "CN"]]
    assert [r.fields["name"] for r in imported(workbook(("notes", [["x"]]), ("cities", rows)), "xlsx")] == ["Xi'an"]
    assert [r.fields["name"] for r in imported(workbook(("Sheet1", rows)), "xlsx")] == ["Xi'an"]


def test_empty_rows_are_skipped_and_cells_past_the_header_are_named():
    body = workbook(("cities", [["name"], ["A"], [None], ["B", None, "stray"]]))
    rows = imported(body, "xlsx")
    assert [r.line for r in rows] == [2, 4]
    assert rows[1].fields[tabular.EXTRA_CELLS] == ["stray"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"name\nXi'an\n", "not an XLSX workbook"),
        (b"PK\x03\x04 broken", "not an XLSX workbook"),
        (workbook(("columns", [["column", "type"], ["name", "string"]])), "needs a header row"),
        (workbook(("cities", [])), "needs a header row"),
        (workbook(("cities", [["name", "name"], ["a", "b"]])), "repeats the column 'name'"),
    ],
    ids=["not a zip", "a broken zip", "the wrong sheet", "an empty sheet", "a repeated column"],
)
def test_a_bad_workbook_is_a_bad_file(body, message):
    with pytest.raises(tabular.BadFile, match=message):
        imported(body, "xlsx")


def test_a_zip_that_is_not_a_workbook_is_a_bad_file():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(tabular.BadFile, match="not an XLSX workbook"):
        imported(out.getvalue(), "xlsx")


def test_too_many_rows_in_a_workbook():
    body = workbook(("cities", [["name"], *[[f"c{i}"] for i in range(6)]]))
    with pytest.raises(tabular.TooManyRows):
        tabular.Upload(body, "xlsx").check(5)
    assert tabular.Upload(body, "xlsx").check(6) == 6


def test_the_media_type_is_excels():
    assert XLSX_MEDIA == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --------------------------------------------------------------------------- templates


def test_the_csv_template_is_the_import_columns_and_an_example_that_imports():
    [row] = imported(tabular.template_csv().encode(), "csv")
    profile = CityCreate.model_validate(row.fields, strict=False)
    assert profile.name == "Xi'an" and profile.contacts.phone == "+86 29 8888 0000"
    assert tabular.template_csv().splitlines()[0].split(",") == list(tabular.COLUMNS)


def test_the_xlsx_template_describes_every_column_from_the_schema():
    body = tabular.template_xlsx()
    [row] = imported(body, "xlsx")
    assert CityCreate.model_validate(row.fields, strict=False).population == 12_900_000
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["cities", "columns"]
    described = [
        dict(zip(tabular.DESCRIPTION_COLUMNS, r, strict=True)) for r in book["columns"].iter_rows(2, values_only=True)
    ]
    assert [d["column"] for d in described] == list(tabular.COLUMNS)
    required = {d["column"] for d in described if d["required"] == "yes"}
    assert required == set(CityFields.model_json_schema()["required"])
    by_column = {d["column"]: d for d in described}
    assert by_column["population"]["type"] == "integer; minimum 0, maximum 100000000"
    assert by_column["languages"]["type"].startswith("list of string")
    assert by_column["need_ai"]["type"] == "integer; minimum 0, maximum 5"
    assert by_column["contact_email"]["type"].startswith("string")
    assert by_column["internet_users_pct"]["type"] == "number; minimum 0, maximum 100"


def test_a_small_workbook_in_memory_has_its_sheets_in_order():
    body = workbook_bytes([("a", ["x"], [{"x": 1}]), ("b", ["y"], [{"y": "=2"}])])
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["a", "b"] and book["b"]["A2"].value == "'=2"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_text_an_api_accepts_is_written_to_a_workbook(text):
    """Control characters (which the API accepts in titles and names, and XML cannot hold) are left out of the cell,
    and what is left is defused: a workbook export never fails once its answer has begun."""
    book = WorkbookWriter()
    book.add_sheet("t", ["a"]).append([{"a": text}, {"a": "\x01=1+1"}])
    with book.save() as saved:
        sheet = load_workbook(io.BytesIO(saved.read()))["t"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert cells[1].value == "'=1+1" and cells[1].data_type == "s"
    assert not [c for c in cells if c.data_type == "f"]
