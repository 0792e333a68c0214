"""The clusters page answers at once after a change, saying that what it shows is being updated, then shows the new
clusters."""

import pytest

from tests.e2e.browser.session import sign_in
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, eventually

pytestmark = pytest.mark.browser

THEMES = {"ai": {"offer": 4, "need": 3}, "ecommerce": {"offer": 3, "need": 4}}  # each meets the others' needs
CITIES = [
    city_body(f"Clusterpage {code}", country_code=code, longitude=70.0 + 5 * i, themes=THEMES)
    for i, code in enumerate(["CN", "KZ", "UZ", "KG"])
]


def test_after_a_change_the_page_says_the_clusters_are_being_updated_then_shows_the_new_ones(stack, admin, browser):
    ids = [admin.post("/api/v1/cities", json=body).json()["id"] for body in CITIES]
    page = sign_in(browser, stack.config.gateway_url, ADMIN_EMAIL, password=ADMIN_PASSWORD)
    url = stack.config.gateway_url + "/clusters"

    def up_to_date_clusters_shown() -> bool:
        page.goto(url)
        return page.locator("#clusters-stale").count() == 0 and "Clusterpage" in page.content()

    eventually(up_to_date_clusters_shown, timeout=30, what="the clusters of the cities registered")
    retired = ids[0]
    assert admin.post(f"/api/v1/cities/{retired}/retire").status_code == 200

    def published_in_matching() -> bool:
        checks = admin.get(f"/api/v1/cities/{retired}/partners").json()["city_constraints"]
        return next(c["passed"] for c in checks if c["name"] == "published")

    eventually(lambda: not published_in_matching(), what="the retirement in matching's index")
    page.goto(url)  # the first view since the change: the clusters found before it, at once
    note = page.locator("#clusters-stale").inner_text()
    assert note.startswith("Being updated: these clusters were found ") and note.endswith(" ago.")
    assert page.locator(f"a[href='/cities/{retired}']").count() > 0

    eventually(up_to_date_clusters_shown, timeout=30, what="the new clusters")
    assert page.locator(f"a[href='/cities/{retired}']").count() == 0
    assert page.errors == []
