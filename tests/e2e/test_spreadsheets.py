"""Spreadsheets through the gateway: an XLSX export edited in openpyxl imports back changing exactly the edited
cells; CSV in the encodings and delimiters spreadsheets save; templates; bad files are problems, never a 500."""

import codecs
import io
import uuid

import pytest
from openpyxl import Workbook, load_workbook

from tests.support import city_body

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
VOLATILE = ("version", "updated_at")  # what any accepted change moves


@pytest.fixture(scope="module")
def tag():
    return uuid.uuid4().hex[:8]


def new_city(client, name: str, **overrides) -> dict:
    body = city_body(name, geonames_id=uuid.uuid4().int % 1_000_000_000 + 1, **overrides)
    response = client.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def profiles(client, tag: str) -> dict[str, dict]:
    response = client.get("/api/v1/cities", params={"q": tag, "limit": 100})
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()["items"]}


def import_file(client, body: bytes, media: str):
    return client.post("/api/v1/cities/import", content=body, headers={"Content-Type": media})


def test_an_edited_xlsx_export_changes_exactly_the_edited_cells(coordinator, tag):
    themes = {"ai": {"offer": 5, "need": 1, "notes": "AI valley", "key_projects": ["Qinchuangyuan"]}}
    names = ("Alpha", "Beta", "Gamma")
    for name in names:
        new_city(
            coordinator,
            f"{name} {tag}",
            local_name="西安",
            alternate_names=["=SUM(A1)", "Chang'an"],
            themes=themes,
            indicators={"internet_users_pct": {"value": 82.5, "year": 2023}},
            languages=["zh"],
            timezone="Asia/Shanghai",
            contacts={"email": "fao@x.example"},
        )
    before = profiles(coordinator, tag)
    exported = coordinator.get("/api/v1/cities/export", params={"format": "xlsx", "q": tag})
    assert exported.status_code == 200 and exported.headers["content-type"] == XLSX

    book = load_workbook(io.BytesIO(exported.content))
    sheet = book["cities"]
    column = {cell.value: cell.column for cell in sheet[1]}
    rows = {sheet.cell(row=r, column=column["name"]).value.split()[0]: r for r in range(2, sheet.max_row + 1)}
    assert set(rows) == set(names)
    assert sheet.cell(row=rows["Alpha"], column=column["alternate_names"]).value == "'=SUM(A1)|Chang'an"
    sheet.cell(row=rows["Beta"], column=column["population"], value=4_321_000)
    sheet.cell(row=rows["Beta"], column=column["need_ai"], value=3)
    sheet.cell(row=rows["Gamma"], column=column["admin_region"], value="Shaanxi")
    edited = io.BytesIO()
    book.save(edited)

    report = import_file(coordinator, edited.getvalue(), XLSX)
    assert report.status_code == 200, report.text
    actions = {row["line"]: row["action"] for row in report.json()["rows"]}
    assert actions == {rows["Alpha"]: "unchanged", rows["Beta"]: "updated", rows["Gamma"]: "updated"}

    after = profiles(coordinator, tag)
    assert after.keys() == before.keys()
    by_name = {c["name"].split()[0]: c["id"] for c in before.values()}
    expected = {city_id: dict(city) for city_id, city in before.items()}
    expected[by_name["Beta"]]["population"] = 4_321_000
    expected[by_name["Beta"]]["themes"]["ai"]["need"] = 3
    expected[by_name["Gamma"]]["admin_region"] = "Shaanxi"
    for city_id, city in after.items():
        edited_city = city_id != by_name["Alpha"]
        strip = VOLATILE if edited_city else ()
        assert {k: v for k, v in city.items() if k not in strip} == {
            k: v for k, v in expected[city_id].items() if k not in strip
        }, city["name"]
        assert (city["version"] == before[city_id]["version"] + 1) is edited_city


def test_a_formula_cell_is_refused_by_row_and_column(coordinator, tag):
    book = Workbook()
    sheet = book.active
    sheet.title = "cities"
    sheet.append(["name", "country_code", "latitude", "longitude", "population"])
    sheet.append([f"Formula {tag}", "CN", 34.2, 108.9, "=2*1000"])
    sheet.append([f"Plain {tag}", "CN", 34.2, 108.9, 2000])
    out = io.BytesIO()
    book.save(out)
    report = import_file(coordinator, out.getvalue(), XLSX).json()
    rejected, created = report["rows"]
    assert rejected["line"] == 2 and rejected["action"] == "rejected"
    assert rejected["errors"] == [
        {
            "field": "population",
            "message": "cell E2 holds a formula (=2*1000); an import takes values only: paste its value",
            "type": "cell_formula",
            "params": {"cell": "E2", "formula": "=2*1000"},
        }
    ]
    assert created["action"] == "created"


@pytest.mark.parametrize(
    "encode, delimiter",
    [
        (lambda t: codecs.BOM_UTF8 + t.encode(), ";"),
        (lambda t: t.encode("utf-16"), "\t"),
        (lambda t: t.encode("gb18030"), ","),
    ],
    ids=["utf-8 BOM, semicolon", "utf-16, tab", "gb18030, comma"],
)
def test_csv_as_excel_saves_it_imports(coordinator, tag, encode, delimiter):
    name = f"西安 {uuid.uuid4().hex[:6]} {tag}"
    text = delimiter.join(["name", "country_code", "latitude", "longitude", "population"]) + "\r\n"
    text += delimiter.join([name, "CN", "34.26", "108.93", "12900000"]) + "\r\n"
    report = import_file(coordinator, encode(text), "text/csv").json()
    assert report["rows"][0]["action"] == "created", report
    assert name in {c["name"] for c in profiles(coordinator, tag).values()}


def test_a_csv_export_may_start_with_a_bom_for_excel(coordinator, tag):
    with_bom = coordinator.get("/api/v1/cities/export", params={"q": tag, "bom": "true"})
    without = coordinator.get("/api/v1/cities/export", params={"q": tag})
    assert with_bom.content.startswith(codecs.BOM_UTF8) and not without.content.startswith(codecs.BOM_UTF8)
    assert with_bom.content[len(codecs.BOM_UTF8) :] == without.content


def test_the_templates_import_as_a_new_city(coordinator, observer_client):
    csv_template = observer_client.get("/api/v1/cities/import/template", params={"format": "csv"})
    assert csv_template.status_code == 200 and csv_template.headers["content-type"].startswith("text/csv")
    xlsx_template = observer_client.get("/api/v1/cities/import/template")
    assert xlsx_template.headers["content-type"] == XLSX
    assert load_workbook(io.BytesIO(xlsx_template.content)).sheetnames == ["cities", "columns"]
    for body, media in ((csv_template.content, "text/csv"), (xlsx_template.content, XLSX)):
        report = coordinator.post(
            "/api/v1/cities/import", content=body, headers={"Content-Type": media}, params={"all_or_nothing": True}
        ).json()
        assert report["accepted"] == 1, report
    assert observer_client.get("/api/v1/cities/import/template", params={"format": "pdf"}).status_code == 422


@pytest.fixture(scope="module")
def observer_client(stack, admin):
    from tests.support import client_for, create_user

    with client_for(stack.config.gateway_url, create_user(admin, ["observer"])["email"]) as client:
        yield client


def zip_of(name: str, text: str) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, text)
    return out.getvalue()


@pytest.mark.parametrize(
    "body, says, code",
    [
        (b"name,country_code\nXi'an,CN\n", "not an XLSX workbook", "workbook_not_zip"),
        (zip_of("readme.txt", "hello"), "not an XLSX workbook", "workbook_unreadable"),
        (b"PK\x03\x04" + b"\x00" * 64, "not an XLSX workbook", "workbook_not_zip"),
    ],
    ids=["not a zip", "a zip of something else", "a broken zip"],
)
def test_a_file_that_is_no_workbook_is_a_problem_naming_the_body(coordinator, body, says, code):
    response = import_file(coordinator, body, XLSX)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = response.json()["errors"]
    assert error["field"] == "body" and says in error["message"] and error["type"] == code


def test_the_wrong_sheet_is_a_problem(coordinator):
    book = Workbook()
    book.active.title = "columns"
    book.active.append(["column", "type"])
    out = io.BytesIO()
    book.save(out)
    response = import_file(coordinator, out.getvalue(), XLSX)
    assert response.status_code == 422 and "`name` column" in response.json()["detail"] + response.text
    # its code and the value its message names: a page says it in its own language
    (error,) = response.json()["errors"]
    assert (error["type"], error["params"]) == ("header_missing_column", {"column": "name"})


def test_a_twin_city_file_refused_whole_names_its_code(coordinator):
    def refusal(body: bytes) -> dict:
        response = coordinator.post(
            "/api/v1/cities/partnerships/import", content=body, headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "body"
        return error

    columns = ["city1", "city2", "country1", "country2", "lat1", "lat2", "lng1", "lng2"]
    missing = refusal(b"city1,country1\nXi'an,China\n")
    assert missing["message"] == "needs the columns " + ",".join(columns)
    assert (missing["type"], missing["params"]) == ("columns_missing", {"columns": columns})
    assert refusal(b"city1\n\xff\xfe\n")["type"] == "file_not_utf8"


def test_pilot_zones_export_as_xlsx(coordinator):
    response = coordinator.get("/api/v1/pilot-zones/export", params={"format": "xlsx"})
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    header = [c.value for c in load_workbook(io.BytesIO(response.content))["pilot zones"][1]]
    assert header[:3] == ["id", "title", "status"]
    with_bom = coordinator.get("/api/v1/pilot-zones/export", params={"bom": "true"})
    assert with_bom.content.startswith(codecs.BOM_UTF8)


def test_templates_and_exports_need_sign_in(anonymous):
    for path in ("/api/v1/cities/import/template", "/api/v1/cities/export?format=xlsx"):
        response = anonymous.get(path)
        assert response.status_code == 401 and response.headers["content-type"].startswith("application/problem+json")
