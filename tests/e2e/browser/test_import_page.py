"""The import page through its form: each row's result and errors in the page's language, and XLSX workbooks."""

import io
import uuid

import pytest
from openpyxl import Workbook

from tests.e2e.browser.session import sign_in
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ["name", "country_code", "latitude", "longitude", "population"]
ACTIONS = ("created", "updated", "unchanged", "rejected", "not imported")  # the API's words, never the page's
# What each language says of a created row, a rejected one, and the rejected row's country and population.
SAID = {
    "zh": ("已创建", "已拒绝", "“XX”不是 ISO 3166-1 二字母国家代码。", "不是整数。"),
    "ar": ("أُنشئ", "مرفوض", "«XX» ليس رمز بلد ثنائي الأحرف وفق ISO 3166-1.", "ليس عددًا صحيحًا."),
}


@pytest.fixture(scope="module")
def admin_page(stack, browser):
    page = sign_in(browser, stack.config.gateway_url, ADMIN_EMAIL, password=ADMIN_PASSWORD)
    yield page
    page.context.close()


def upload(page, base: str, lang: str, name: str, mime_type: str, body: bytes) -> list[tuple[str, str, str]]:
    """The file sent through the import form of the page in `lang`: the report's rows (line, result, errors)."""
    page.goto(f"{base}/import?lang={lang}")
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime_type, "buffer": body}])
    page.click("form[action='/import'] button[type=submit]")
    page.wait_for_selector("p[role=status]")
    rows = page.locator("table.list tbody tr")
    return [tuple(rows.nth(i).locator("td").all_inner_texts()) for i in range(rows.count())]


@pytest.mark.parametrize("lang", SAID)
def test_each_rows_result_and_errors_are_said_in_the_page_language(stack, admin_page, lang, shoot):
    created, rejected, country, population = SAID[lang]
    tag = uuid.uuid4().hex[:6]
    lines = [HEADER, [f"Good {tag}", "CN", "34.26", "108.93", "1000000"], [f"Bad {tag}", "XX", "1", "2", "many"]]
    body = "".join(",".join(line) + "\n" for line in lines).encode()
    report = upload(admin_page, stack.config.gateway_url, lang, "cities.csv", "text/csv", body)
    assert report == [
        ("2", created, ""),
        ("3", rejected, f"country_code: {country}\npopulation: {population}"),  # the column keeps the file's name
    ]
    table = admin_page.locator("table.list").inner_text().lower()
    assert not [word for word in ACTIONS if word in table], table
    shoot(admin_page, f"{lang}-import-report")
    assert admin_page.errors == []


def test_a_row_whose_ids_name_two_cities_is_said_in_the_page_language(stack, admin, admin_page):
    tag, geonames_id = uuid.uuid4().hex[:6], str(uuid.uuid4().int % 10**9)
    lines = [
        [*HEADER, "geonames_id", "external_id"],
        [f"A {tag}", "CN", "34.26", "108.93", "1000", geonames_id, ""],
        [f"B {tag}", "CN", "34.26", "108.93", "1000", "", f"ext-{tag}"],
        [f"C {tag}", "CN", "34.26", "108.93", "1000", geonames_id, f"ext-{tag}"],
    ]
    body = "".join(",".join(line) + "\n" for line in lines).encode()
    report = upload(admin_page, stack.config.gateway_url, "zh", "cities.csv", "text/csv", body)
    assert [(line, result) for line, result, _ in report] == [("2", "已创建"), ("3", "已创建"), ("4", "已拒绝")]
    named = {city["id"] for city in admin.get("/api/v1/cities", params={"q": tag}).json()["items"]}
    errors = report[2][2].split("\n")
    assert [e.split(": ", 1)[0] for e in errors] == ["geonames_id", "external_id"]
    for error in errors:  # the sentence, naming the two cities the row's ids name
        assert "指向不同的城市" in error and all(city_id in error for city_id in named), error
    assert len(named) == 2 and admin_page.errors == []


def test_an_xlsx_workbook_is_imported_through_the_form(stack, admin, admin_page):
    name = f"Workbook {uuid.uuid4().hex[:6]}"
    book = Workbook()
    book.active.title = "cities"
    book.active.append(HEADER)
    book.active.append([name, "KZ", 43.25, 76.9, 2_000_000])
    out = io.BytesIO()
    book.save(out)
    admin_page.goto(stack.config.gateway_url + "/import?lang=zh")
    assert admin_page.locator("label[for=file]").inner_text() == "CSV、XLSX 或 JSON 文件"
    assert ".xlsx" in admin_page.locator("#file").get_attribute("accept")
    report = upload(admin_page, stack.config.gateway_url, "zh", "cities.xlsx", XLSX, out.getvalue())
    assert report == [("2", "已创建", "")]
    [city] = admin.get("/api/v1/cities", params={"q": name}).json()["items"]
    assert (city["name"], city["country_code"], city["population"]) == (name, "KZ", 2_000_000)
    assert admin_page.errors == []
