"""Every page: no inline script, no outside assets, labelled, switchable language; fast directory."""

import re

import pytest

from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, eventually, handled

pytestmark = pytest.mark.browser
PAGES = ["/", "/cities", "/map", "/pilot-zones", "/import", "/rounds", "/clusters"]


@pytest.fixture(scope="module")
def admin_page(stack, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.config.gateway_url + "/")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_url(stack.config.gateway_url + "/")
    yield page
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_pages_hold_no_inline_script_and_load_nothing_from_outside(stack, admin_page, path, shoot):
    response = admin_page.goto(stack.config.gateway_url + path)
    assert response.status == 200
    html = admin_page.content()
    assert len(html) < 200_000 and html.count('id="main"') == 1, "the page is built once, not repeated"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r"""(src|href)=["']https?://""", html), "an outside asset"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for field in admin_page.locator("input:not([type=hidden]):not([type=submit]), select").all():
        field_id = field.get_attribute("id")
        assert field_id and admin_page.locator(f"label[for='{field_id}']").count() == 1, field_id
    shoot(admin_page, "page" + path.replace("/", "-"))


def test_language_switch_is_remembered(stack, admin_page):
    admin_page.goto(stack.config.gateway_url + "/cities?lang=zh")
    admin_page.goto(stack.config.gateway_url + "/pilot-zones")
    assert admin_page.locator("html").get_attribute("lang") == "zh-Hans"
    assert "试验区" in admin_page.content()
    admin_page.goto(stack.config.gateway_url + "/pilot-zones?lang=en")
    assert "Pilot zones" in admin_page.content()


def test_forms_without_the_csrf_token_are_refused(stack, admin_page):
    response = admin_page.request.post(stack.config.gateway_url + "/sign-out", form={"csrf": "forged"})
    assert response.ok  # redirected home, still signed in
    assert admin_page.goto(stack.config.gateway_url + "/cities").url.endswith("/cities")
    forged = admin_page.request.post(stack.config.gateway_url + "/rounds", form={"csrf": "forged", "capacity": "1"})
    assert forged.status == 400 and "CSRF" in forged.text()
    missing = admin_page.request.post(
        stack.config.gateway_url + "/import",
        multipart={"file": {"name": "x.csv", "mimeType": "text/csv", "buffer": b"name\nX\n"}},
    )
    assert missing.status == 400


def test_a_file_refused_whole_is_said_in_the_page_language(stack, admin_page):
    admin_page.goto(stack.config.gateway_url + "/import?lang=zh")
    try:
        refused = {"name": "cities.csv", "mimeType": "text/csv", "buffer": b"name,name\nX,Y\n"}
        admin_page.set_input_files("#file", files=[refused])
        admin_page.click("form[action='/import'] button[type=submit]")
        assert admin_page.locator("p[role=alert]").inner_text() == "标题行中“name”列重复出现。"
    finally:
        admin_page.goto(stack.config.gateway_url + "/import?lang=en")  # the page is shared: back to English


def test_directory_of_5000_cities_loads_within_500_ms(stack, admin, admin_page):
    rows = [city_body(f"Perf City {i}", latitude=(i % 160) - 80, longitude=(i % 340) - 170) for i in range(5000)]
    before = handled(stack)
    assert admin.post("/api/v1/cities/import", json=rows, timeout=300).json()["accepted"] == 5000
    # measured once matching has taken in the 5,000 registrations: the page alone, not the import's aftermath
    eventually(lambda: handled(stack) >= before + 5000, timeout=300, interval=0.5, what="matching to take the import")
    timings = []
    for _ in range(5):
        admin_page.goto(stack.config.gateway_url + "/cities?q=perf")
        timings.append(admin_page.evaluate("performance.getEntriesByType('navigation')[0].duration"))
    timings.sort()
    print(f"directory with 5,000 cities, Navigation Timing duration: median {timings[2]:.0f} ms, all {timings}")
    assert timings[2] <= 500


@pytest.mark.parametrize("path", ["/", "/cities", "/pilot-zones"])
def test_pages_fit_a_phone(stack, browser, path, shoot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(stack.config.gateway_url + "/")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_url(stack.config.gateway_url + "/")
    page.goto(stack.config.gateway_url + path)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    shoot(page, "phone" + path.replace("/", "-"))
    context.close()


def test_the_clusters_page_shows_the_size_matching_used(stack, admin_page):
    """It said "Size 4" (a default of web's own) above clusters of matching's default, 5."""
    admin_page.goto(stack.config.gateway_url + "/clusters")
    assert admin_page.locator("#size").input_value() == "5"
    admin_page.goto(stack.config.gateway_url + "/clusters?size=3")
    assert admin_page.locator("#size").input_value() == "3"
