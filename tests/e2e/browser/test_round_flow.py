"""In the pages only: a coordinator runs a round for a corridor, reviews it and publishes it, and an official sees
it; a coordinator creates a city, verifies and publishes it, and its history shows the changes and no contacts;
the open-data pages render for anyone."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.session import sign_in
from tests.support import city_body, client_for, create_user, eventually, partner_of

pytestmark = pytest.mark.browser
CORRIDOR = "china_pakistan"
SECRET_EMAIL = "mayor-office@private.example"


def register(admin, body: dict) -> str:
    response = admin.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def corridor_cities(admin):
    """Two perfect pairs and a city no one suits on the corridor, and a perfect partner off it."""
    tag = uuid.uuid4().hex[:4]
    on = {"corridors": [CORRIDOR]}
    kashgar = city_body(f"Kashgar {tag}", **on)
    urumqi = city_body(f"Urumqi {tag}", themes={"iot": {"offer": 5, "need": 0}, "logistics": {"offer": 0, "need": 5}})
    ids = {
        "kashgar": register(admin, kashgar),
        "gwadar": register(admin, {**partner_of(kashgar, f"Gwadar {tag}", "PK"), **on}),
        "urumqi": register(admin, {**urumqi, **on}),
        "lahore": register(admin, {**partner_of(urumqi, f"Lahore {tag}", "PK"), **on}),
        "lonely": register(admin, city_body(f"Lonely {tag}", themes={"ai": {"offer": 0, "need": 1}}, **on)),
        "off": register(admin, partner_of(kashgar, f"Almaty {tag}")),
    }
    for city_id in ids.values():
        eventually(lambda c=city_id: admin.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="matching")
    return tag, ids


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_coordinator_runs_a_round_for_a_corridor_and_publishes_it(stack, admin, browser, shoot, corridor_cities, lang):
    base = stack.config.gateway_url
    tag, ids = corridor_cities
    coordinator = sign_in(browser, base, create_user(admin, ["coordinator"])["email"], lang)
    coordinator.goto(f"{base}/rounds")
    coordinator.check(f"#c-{CORRIDOR}")
    coordinator.fill("#capacity", "1")
    coordinator.fill("#min_score", "0")
    shoot(coordinator, f"{lang}-rounds")
    coordinator.click("form.round-form button[type=submit]")
    coordinator.wait_for_url(re.compile(r"/rounds/[0-9a-f-]{36}$"))
    round_url = coordinator.url

    # The review: the two pairs of the corridor (never the city off it), the unmatched city and why, in words.
    pairs = coordinator.locator("#pairs tbody tr")
    assert pairs.count() == 2, pairs.all_inner_texts()
    paired = {frozenset(link.get_attribute("href").split("/")[2:]) for link in pairs.locator("a").all()}
    assert paired == {frozenset((ids["kashgar"], ids["gwadar"])), frozenset((ids["urumqi"], ids["lahore"]))}
    assert f"Almaty {tag}" not in coordinator.locator("#pairs").inner_text()
    unmatched = coordinator.locator("#unmatched tbody tr")
    assert unmatched.count() == 1 and f"Lonely {tag}" in unmatched.inner_text()
    reason = {"en": "No allowed partner in the round", "zh": "本轮中没有达到最低得分的可选伙伴"}[lang]
    assert reason in unmatched.inner_text()
    shoot(coordinator, f"{lang}-round")

    coordinator.click("#publish button[type=submit]")
    coordinator.wait_for_url(re.compile(r"\?published=1$"))
    assert coordinator.locator(".ok").is_visible()
    assert coordinator.locator("#publish").count() == 0, "published once: no second button"
    assert {"en": "Published", "zh": "已发布"}[lang] in coordinator.locator("#round-status").inner_text()

    # An official of a paired city finds the published round among the rounds, reads it, and cannot publish.
    official = sign_in(browser, base, create_user(admin, ["official"], [ids["gwadar"]])["email"], lang)
    official.goto(f"{base}/rounds")
    round_path = round_url.removeprefix(base)
    assert official.locator(f"#rounds a[href='{round_path}']").count() == 1
    assert official.locator("form.round-form").count() == 0
    official.locator(f"#rounds a[href='{round_path}']").click()
    assert official.locator("#pairs tbody tr").count() == 2 and official.locator("#publish").count() == 0
    shoot(official, f"{lang}-round-official")
    assert not coordinator.errors and not official.errors, coordinator.errors + official.errors


def test_a_round_form_error_is_shown_next_to_its_field(stack, admin, browser):
    base = stack.config.gateway_url
    coordinator = sign_in(browser, base, create_user(admin, ["coordinator"])["email"])
    coordinator.goto(f"{base}/rounds")
    coordinator.evaluate("document.querySelector('#capacity').removeAttribute('max')")
    coordinator.fill("#capacity", "50")  # the API allows at most 20, and names the field
    coordinator.click("form.round-form button[type=submit]")
    assert coordinator.locator("#e-capacity").is_visible()
    assert coordinator.locator("#capacity").get_attribute("aria-invalid") == "true"


def test_a_city_is_created_verified_published_and_its_history_shows_no_contacts(stack, admin, browser, shoot):
    base = stack.config.gateway_url
    name = f"Multan {uuid.uuid4().hex[:4]}"
    coordinator = sign_in(browser, base, create_user(admin, ["coordinator"])["email"])
    coordinator.goto(f"{base}/cities/new")
    coordinator.fill("#f-name", name)
    coordinator.select_option("#f-country_code", "PK")
    coordinator.fill("#f-population", "2000000")
    coordinator.fill("#f-latitude", "95")  # the browser lets it through; the API names the field
    coordinator.fill("#f-longitude", "71.47")
    coordinator.check(f"#c-{CORRIDOR}")
    coordinator.check("#f-draft")
    coordinator.click("form.profile button[type=submit]")
    assert coordinator.locator("#e-latitude").is_visible()
    assert coordinator.locator("#f-name").input_value() == name, "what was typed is kept"
    shoot(coordinator, "en-city-new-error")
    coordinator.fill("#f-latitude", "30.2")
    coordinator.click("form.profile button[type=submit]")
    coordinator.wait_for_url(re.compile(r"/cities/[0-9a-f-]{36}\?saved=1$"))
    city_id = coordinator.url.split("/cities/")[1].split("?")[0]
    assert admin.get(f"/api/v1/cities/{city_id}").json()["status"] == "draft"

    for action in ("verify", "publish"):
        coordinator.click(f"button[name=action][value={action}]")
        coordinator.wait_for_url(re.compile(rf"/cities/{city_id}\?saved=1$"))
    city = admin.get(f"/api/v1/cities/{city_id}").json()
    assert city["status"] == "published" and city["verified"] is True
    assert coordinator.locator("button[name=action][value=publish]").count() == 0
    shoot(coordinator, "en-city-actions")

    # The city's official changes its contacts; an official is offered no state changes.
    official = sign_in(browser, base, create_user(admin, ["official"], [city_id])["email"])
    official.goto(f"{base}/cities/{city_id}/edit")
    official.fill("#f-contact_email", SECRET_EMAIL)
    official.click("form.profile button[type=submit]")
    official.wait_for_url(re.compile(rf"/cities/{city_id}\?saved=1$"))
    assert official.locator("button[name=action]").count() == 0
    assert admin.get(f"/api/v1/cities/{city_id}").json()["contacts"]["email"] == SECRET_EMAIL

    official.goto(f"{base}/cities/{city_id}/history")
    rows = official.locator("table.history tbody tr").all_inner_texts()
    assert [row.split("\t")[2] for row in rows] == ["Updated", "Published", "Verified", "Created"], rows
    assert "Draft → Published" in rows[1] and "Contacts: changed" in rows[0], rows
    assert SECRET_EMAIL not in official.content()
    shoot(official, "en-history")

    # Creating a city is the programme's: the API refuses an official, and the page says so.
    official.goto(f"{base}/cities/new")
    official.fill("#f-name", f"Not mine {uuid.uuid4().hex[:4]}")
    official.select_option("#f-country_code", "PK")
    for field, value in (("population", "1000"), ("latitude", "30"), ("longitude", "70")):
        official.fill(f"#f-{field}", value)
    with official.expect_response(lambda r: r.url.endswith("/cities/new") and r.request.method == "POST") as answer:
        official.click("form.profile button[type=submit]")
    assert answer.value.status == 403
    assert not coordinator.errors and not official.errors, coordinator.errors + official.errors


def approved_pilot_zone(stack, admin, tag: str) -> str:
    """A pilot zone taken to approval through the API (the pages' own walk is test_flow's); its title."""
    body = city_body(f"Chengdu {tag}")
    a, b = register(admin, body), register(admin, partner_of(body, f"Tashkent {tag}", "UZ"))
    base, title = stack.config.gateway_url, f"Open corridor {tag}"
    emails = [
        create_user(admin, roles, cities)["email"] for roles, cities in ((["official"], [a]), (["official"], [b]))
    ]
    reviewer_email = create_user(admin, ["coordinator"])["email"]
    with (
        client_for(base, emails[0]) as first,
        client_for(base, emails[1]) as second,
        client_for(base, reviewer_email) as reviewer,
    ):
        created = eventually(
            lambda: (
                (r := first.post("/api/v1/pilot-zones", json={"title": title, "city_ids": [a, b]})).status_code == 201
                and r.json()
            ),
            what="pilot_zones to know both cities",
        )
        pid = created["id"]
        assert second.post(f"/api/v1/pilot-zones/{pid}/members/{b}/confirm").status_code == 200
        for client, step in ((first, "submitted"), (reviewer, "under_review"), (reviewer, "approved")):
            moved = client.post(f"/api/v1/pilot-zones/{pid}/transitions", json={"to": step})
            assert moved.status_code == 200, moved.text
    return title


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_open_data_pages_render_without_signing_in(stack, admin, browser, shoot, lang):
    base = stack.config.gateway_url
    tag = uuid.uuid4().hex[:4]
    title = approved_pilot_zone(stack, admin, tag)
    public = register(admin, city_body(f"Xian{tag} Open", local_name="西安", contacts={"email": SECRET_EMAIL}))
    marked = admin.patch(f"/api/v1/cities/{public}", json={"public_fields": ["population", "local_name"]})
    assert marked.status_code == 200, marked.text
    register(admin, city_body(f"Xian{tag} Closed"))

    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-GB")
    page = context.new_page()
    page.goto(f"{base}/?lang={lang}")
    page.locator("a[href='/open-data/pilot-zones']").click()
    assert page.url == f"{base}/open-data/pilot-zones"
    assert title in page.locator("#open-pilot-zones").inner_text()
    assert {"en": "Approved", "zh": "已批准"}[lang] in page.locator("#open-pilot-zones").inner_text()
    shoot(page, f"{lang}-open-pilot-zones")

    page.locator("a[href='/open-data/cities']").click()
    page.fill("#q", f"Xian{tag}")
    page.select_option("#country", "CN")
    page.click("form[role=search] button[type=submit]")
    cards = page.locator("ul.open-cities > li")
    expect(cards).to_have_count(2)  # waits for the answer to the search (count() would read the page before it)
    shown = {card.locator("h2").inner_text(): card.inner_text() for card in cards.all()}
    open_card = next(text for heading, text in shown.items() if heading.startswith(f"Xian{tag} Open"))
    closed_card = next(text for heading, text in shown.items() if heading.startswith(f"Xian{tag} Closed"))
    assert "12,900,000" in open_card or "1,290.0 万" in open_card, open_card
    assert {"en": "no other fields public", "zh": "未公开其他字段"}[lang] in closed_card
    assert "西安" in open_card and SECRET_EMAIL not in page.content()
    shoot(page, f"{lang}-open-cities")
    context.close()
