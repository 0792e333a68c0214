"""The Users page's cities field in a real browser, against the running stack: an admin types cities by name (any
case), an ambiguous name is refused with each city's id to paste, a name no city has is refused in the page's
language, and a user's cities, shown by name, save back as the same cities."""

import uuid

import pytest

from tests.e2e.browser.session import sign_in
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, create_user

pytestmark = pytest.mark.browser


def new_city(admin, name: str, country_code: str = "CN") -> str:
    created = admin.post("/api/v1/cities", json=city_body(name, country_code=country_code))
    assert created.status_code == 201, created.text
    return created.json()["id"]


def invitation_to(admin, email: str) -> dict | None:
    invitations = admin.get("/api/v1/invitations", params={"limit": 100}).json()["items"]
    return next((i for i in invitations if i["email"] == email), None)


def invite(page, email: str, cities: str) -> None:
    page.fill("#i-email", email)
    page.check("#i-role-official")
    page.fill("#i-city_ids", cities)
    page.click("#invite button[type=submit]")


@pytest.fixture(scope="module")
def tag():
    return uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def cities(admin, tag):
    """Kashgar, and two cities called Osh (in Kyrgyzstan and in Tajikistan)."""
    return {
        "kashgar": new_city(admin, f"Kashgar {tag}"),
        "osh_kg": new_city(admin, f"Osh {tag}", "KG"),
        "osh_tj": new_city(admin, f"Osh {tag}", "TJ"),
    }


def test_an_admin_invites_an_official_of_a_city_typed_by_name(stack, admin, browser, tag, cities):
    base = stack.config.gateway_url
    email = f"by-name-{uuid.uuid4().hex[:8]}@test.citypair"
    page = sign_in(browser, base, ADMIN_EMAIL, password=ADMIN_PASSWORD)
    page.goto(f"{base}/users")

    # A typo: refused next to the field, as typed, and nothing is sent to identity.
    invite(page, email, f"Kashgr {tag}")
    assert page.locator("#e-city_ids").inner_text() == f"No city is called “Kashgr {tag}”."
    assert page.input_value("#i-city_ids") == f"Kashgr {tag}" and page.input_value("#i-email") == email
    assert invitation_to(admin, email) is None

    # A name of two cities: refused, listing each with its id.
    invite(page, email, f"Osh {tag}")
    said = page.locator("#e-city_ids").inner_text()
    assert f"Osh {tag} (KG, {cities['osh_kg']})" in said and f"Osh {tag} (TJ, {cities['osh_tj']})" in said
    assert invitation_to(admin, email) is None

    # The name in any case, and the id pasted from that list.
    invite(page, email, f"kashgar {tag.upper()}, {cities['osh_kg']}")
    assert email in page.locator("p.ok[role=status]").inner_text()
    assert invitation_to(admin, email)["city_ids"] == sorted([cities["kashgar"], cities["osh_kg"]])
    assert not page.errors
    page.context.close()


def test_a_users_cities_are_shown_and_changed_by_name(stack, admin, browser, tag, cities):
    base = stack.config.gateway_url
    official = create_user(admin, ["official"], [cities["osh_tj"]])
    row_field, row_error = f"#c-{official['id']}", f"[id='e-{official['id']}.city_ids']"
    page = sign_in(browser, base, ADMIN_EMAIL, password=ADMIN_PASSWORD)
    page.goto(f"{base}/users?q={official['email']}")
    assert page.input_value(row_field) == f"Osh {tag}"

    page.fill(row_field, f"Osh {tag}, Kashgar {tag}, Kashgr {tag}")
    page.locator(f"#user-{official['id']} button[type=submit]", has_text="Save").click()
    assert page.locator(row_error).inner_text() == f"No city is called “Kashgr {tag}”."
    assert page.input_value(row_field) == f"Osh {tag}, Kashgar {tag}, Kashgr {tag}"
    assert admin.get(f"/api/v1/users/{official['id']}").json()["city_ids"] == [cities["osh_tj"]]

    # Their Osh stays theirs (the other one shares its name), and Kashgar is added.
    page.fill(row_field, f"Osh {tag}, Kashgar {tag}")
    page.locator(f"#user-{official['id']} button[type=submit]", has_text="Save").click()
    assert page.locator("p.ok[role=status]").is_visible()
    expected = sorted([cities["osh_tj"], cities["kashgar"]])
    assert admin.get(f"/api/v1/users/{official['id']}").json()["city_ids"] == expected

    # Saved again unchanged, the names shown are the same cities.
    shown = page.input_value(row_field)
    assert sorted(shown.split(", ")) == sorted([f"Osh {tag}", f"Kashgar {tag}"])
    page.locator(f"#user-{official['id']} button[type=submit]", has_text="Save").click()
    assert page.locator("p.ok[role=status]").is_visible()
    assert admin.get(f"/api/v1/users/{official['id']}").json()["city_ids"] == expected
    assert not page.errors
    page.context.close()


def test_a_name_no_city_has_is_refused_in_chinese(stack, admin, browser, tag, cities):
    base = stack.config.gateway_url
    email = f"zh-{uuid.uuid4().hex[:8]}@test.citypair"
    page = sign_in(browser, base, ADMIN_EMAIL, lang="zh", password=ADMIN_PASSWORD)
    page.goto(f"{base}/users")
    assert page.locator("label[for=i-city_ids]").inner_text() == "城市（名称或 ID，以逗号分隔）"
    invite(page, email, f"Kashgr {tag}")
    assert page.locator("#e-city_ids").inner_text() == f"没有名为“Kashgr {tag}”的城市。"
    invite(page, email, f"Osh {tag}")
    assert "请输入您所指城市的 ID" in page.locator("#e-city_ids").inner_text()
    assert invitation_to(admin, email) is None
    assert not page.errors
    page.context.close()
