"""The language a page speaks when nobody chose one: the browser's. (Every page in every language is checked in
test_accessibility.py.)"""

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("accept", "lang", "direction"), [("ar-EG,ar;q=0.9", "ar", "rtl"), ("ru-RU,ru", "ru", "ltr")])
def test_the_sign_in_page_follows_the_browser_language(stack, browser, accept, lang, direction):
    context = browser.new_context(extra_http_headers={"Accept-Language": accept})
    page = context.new_page()
    page.goto(stack.config.gateway_url + "/")
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (lang, direction)
    if direction == "rtl":  # laid out from the right: the sign-in button ends right of the page's middle
        box = page.locator("form[action='/sign-in'] button[type=submit]").bounding_box()
        assert box["x"] + box["width"] > page.viewport_size["width"] / 2
    context.close()
