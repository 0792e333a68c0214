"""The whole flow in a real browser: an official fixes their profile and accepts a partner, the
partner city accepts, a coordinator takes the drafted proposal to approval — in English and Chinese."""

import re
import uuid

import pytest

from tests.e2e.browser.session import sign_in
from tests.support import city_body, create_user, eventually, partner_of

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_official_to_approved_pilot_zone(stack, admin, browser, shoot, lang):
    base = stack.config.gateway_url
    tag = uuid.uuid4().hex[:4]
    xian = {
        **city_body(f"Xi'an {tag}"),
        "local_name": "西安",
        "themes": {
            "ai": {"offer": 5, "need": 0},
            "ecommerce": {"offer": 0, "need": 4},
            "logistics": {"offer": 3, "need": 1},
        },
    }
    a = admin.post("/api/v1/cities", json=xian).json()["id"]
    b = admin.post("/api/v1/cities", json=partner_of(xian, f"Almaty {tag}")).json()["id"]
    official_a = create_user(admin, ["official"], [a])["email"]
    official_b = create_user(admin, ["official"], [b])["email"]
    coordinator = create_user(admin, ["coordinator"])["email"]
    eventually(
        lambda: b in [p["city_id"] for p in admin.get(f"/api/v1/cities/{a}/partners").json().get("items", [])],
        what="matching to know both cities",
    )

    page = sign_in(browser, base, official_a, lang)
    shoot(page, f"{lang}-dashboard")
    # Fix a validation error, then save the profile.
    page.goto(f"{base}/cities/{a}/edit")
    page.fill("#f-latitude", "95")  # the browser lets it through; the API names the field
    page.fill("#f-population", "13000000")
    page.click("form.profile button[type=submit]")
    assert page.locator("#e-latitude").is_visible()
    assert page.locator("#f-latitude").get_attribute("aria-invalid") == "true"
    shoot(page, f"{lang}-edit-error")
    page.fill("#f-latitude", "34.27")
    page.click("form.profile button[type=submit]")
    page.wait_for_url(re.compile(rf"/cities/{a}\?saved=1"))
    assert page.locator(".ok").is_visible()
    shoot(page, f"{lang}-city")
    # Suggestions with an explanation; accept the partner.
    page.goto(f"{base}/cities/{a}/partners")
    card = page.locator("ol.suggestions > li", has=page.locator(f"a[href='/pairs/{a}/{b}']"))
    card.locator("summary").click()
    assert card.locator("details table").is_visible()
    # factors, theme sentences and reasons in the page's language (the API's keys and sentences are English)
    words = {"en": ("Complementarity, both ways", " offers ", "Too far"), "zh": ("双向互补", "方面可提供", "距离太远")}
    assert all(word in card.inner_text() for word in words[lang]), card.inner_text()
    shoot(page, f"{lang}-partners")
    card.locator("button[value=accept]").click()
    page.wait_for_url(re.compile(rf"/pairs/{a}/{b}\?decided=1"))
    shoot(page, f"{lang}-pair")

    partner = sign_in(browser, base, official_b, lang)
    partner.goto(f"{base}/cities/{b}/partners")
    partner.locator("ol.suggestions > li", has=partner.locator(f"a[href='/pairs/{b}/{a}']")).locator(
        "button[value=accept]"
    ).click()
    partner.wait_for_url(re.compile(rf"/pairs/{b}/{a}\?decided=1"))

    # Both accepted: matching published the match; pilot_zones drafted a proposal for the pair.
    proposal = eventually(
        lambda: next(
            (
                p
                for p in admin.get("/api/v1/pilot-zones", params={"limit": 100}).json()["items"]
                if set(p["city_ids"]) == {a, b}
            ),
            None,
        ),
        timeout=20,
        what="a drafted proposal for the pair",
    )
    for member_page, city_id in ((page, a), (partner, b)):
        member_page.goto(f"{base}/pilot-zones/{proposal['id']}")
        member_page.locator(f"form[action$='/members/{city_id}/confirm'] button").click()
    page.goto(f"{base}/pilot-zones/{proposal['id']}")
    page.locator("button[name=to][value=submitted]").click()
    assert page.locator("#status").get_attribute("data-status") == "submitted"

    reviewer = sign_in(browser, base, coordinator, lang)
    reviewer.goto(f"{base}/pilot-zones")
    shoot(reviewer, f"{lang}-board")
    reviewer.locator(f"a[href='/pilot-zones/{proposal['id']}']").first.click()
    for step in ("under_review", "approved"):
        reviewer.locator(f"button[name=to][value={step}]").click()
        assert reviewer.locator("#status").get_attribute("data-status") == step
    shoot(reviewer, f"{lang}-proposal")

    # The official hears of it on the dashboard, and the live feed says the same.
    page.goto(f"{base}/")
    assert page.locator(f"#notifications a[href='/pilot-zones/{proposal['id']}']").count() >= 1
    feed = page.request.get(f"{base}/notifications.json").json()["items"]
    assert any(item["link"] == f"/pilot-zones/{proposal['id']}" for item in feed)

    # The map and the network draw real cities and partnerships (recorded as twin cities in profiles).
    twins = (
        "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n"
        f"Xi'an {tag},China,34.26,108.93,Almaty {tag},Kazakhstan,43.25,76.9\n"
    )
    imported = admin.post("/api/v1/cities/partnerships/import", content=twins, headers={"Content-Type": "text/csv"})
    assert imported.json()["created"] == 1, imported.text

    def partnerships_drawn() -> bool:
        # The map opened on the city draws its partnerships (the canvas says how many in `data-links`).
        reviewer.goto(f"{base}/map?city={a}")
        view = reviewer.wait_for_selector("#map-view[data-ready=true]")
        return int(view.get_attribute("data-total")) >= 2 and view.get_attribute("data-links") == "1"

    eventually(partnerships_drawn, timeout=30, what="the recorded twin cities drawn as a partnership")
    shoot(reviewer, f"{lang}-map")
    reviewer.goto(f"{base}/cities/{a}/network")
    assert reviewer.locator("svg.network circle").count() >= 2
    frame = reviewer.locator("svg.network").bounding_box()
    for label in reviewer.locator("svg.network text").all():  # every label inside the frame (they were clipped)
        box = label.bounding_box()
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"], label.text_content()
    shoot(reviewer, f"{lang}-network")
    if lang == "zh":
        assert "城市名录" in reviewer.content()
    for p in (page, partner, reviewer):
        assert p.errors == [], p.errors
