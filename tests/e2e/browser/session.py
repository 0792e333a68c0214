"""Signing in through the page, as a person would, for the browser tests."""

from tests.support import PASSWORD


def sign_in(browser, base: str, email: str, lang: str = "en", password: str = PASSWORD, **options):
    """A new browser context (with Playwright's `options`) signed in as `email`; the page's `errors` collects script
    errors and 5xx answers (a 412 or 422 page is an answer, not an error), which the tests assert empty."""
    locale = {"zh": "zh-CN", "ru": "ru-RU", "ar": "ar-EG"}.get(lang, "en-GB")
    context = browser.new_context(locale=locale, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.goto(f"{base}/?lang={lang}")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.errors = errors
    return page
