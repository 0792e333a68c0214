"""Accounts in a real browser, with the mails read from the SMTP server the stack sends through: an admin invites
a user, who sets a password from the mail's link, signs in, changes the password, forgets it and resets it from
the second mail. An official gets no user list; a coordinator gets one without the admin's buttons; a mail's
unsubscribe link changes nothing until its page's button is pressed."""

import re
import uuid

import pytest

from citypair_cli.mailbox import read_mails
from citypair_shared.events import new_event
from citypair_shared.events.pilot_zones import EVENT_FOR_STATUS
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    city_body,
    client_for,
    connect_nats,
    create_user,
    eventually,
    run_async,
)
from tests.support import sign_in as sign_in_api

pytestmark = pytest.mark.browser

FIRST_PASSWORD = "lanterns over the caravanserai"
SECOND_PASSWORD = "camels carry fibre optic cable"
THIRD_PASSWORD = "a reset by the silk road gate"


def watch(context):
    """A page that records script errors and server errors (a test ends by asserting there were none)."""
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    return page


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form[action='/sign-in'] button[type=submit]")


def new_city(admin, name: str) -> str:
    return admin.post("/api/v1/cities", json=city_body(f"{name} {uuid.uuid4().hex[:6]}")).json()["id"]


def mails_to(stack, address: str, count: int) -> list[str]:
    """The plain-text parts of the first `count` mails to `address` the stack's SMTP server has kept, oldest first
    (waiting for them to arrive)."""

    def arrived():
        texts = [m.get_body(("plain",)).get_content() for m in read_mails(stack.config.mail_dir) if address in m["To"]]
        return texts if len(texts) >= count else None

    return eventually(arrived, timeout=30, what=f"{count} mail(s) to {address}")[:count]


def publish(stack, event) -> None:
    """An event on the real bus, as pilot_zones would publish it."""

    async def go():
        nc = await connect_nats(stack)
        await nc.jetstream().publish(event.type, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id})
        await nc.close()

    run_async(go())


def link_in(mail_text: str, base: str, path: str) -> str:
    """The one link to `path` in the mail (its address must be the stack's: the pages the mails point to)."""
    links = re.findall(re.escape(base) + re.escape(path) + r"[^\s<>\"']+", mail_text)
    assert len(set(links)) == 1, mail_text
    return links[0]


def test_invite_set_password_sign_in_change_forget_and_reset(stack, admin, browser, shoot):
    base = stack.config.gateway_url
    city = new_city(admin, "Kashgar")
    email = f"invitee-{uuid.uuid4().hex[:8]}@test.citypair"

    # The admin invites an official of the city from the Users page.
    admin_context = browser.new_context()
    admin_page = watch(admin_context)
    sign_in(admin_page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin_page.click("nav a[href='/users']")
    admin_page.fill("#i-email", email)
    admin_page.fill("#i-name", "Aygul Tursun")
    admin_page.check("#i-role-official")
    admin_page.fill("#i-city_ids", city)
    admin_page.click("#invite button[type=submit]")
    assert email in admin_page.locator("p.ok[role=status]").inner_text()
    assert email in admin_page.locator("#invitations").inner_text()
    shoot(admin_page, "en-users")
    # An address someone already signs in with: said next to the e-mail field, what was typed kept.
    admin_page.fill("#i-email", ADMIN_EMAIL)
    admin_page.fill("#i-name", "Someone Else")
    admin_page.check("#i-role-observer")
    admin_page.click("#invite button[type=submit]")
    assert admin_page.locator("#e-email").inner_text() == "One with the same details exists already."
    assert admin_page.input_value("#i-name") == "Someone Else"
    admin_context.close()

    # The invitee reads the mail on the development mail page, follows its link and chooses a password.
    (invitation,) = mails_to(stack, email, 1)
    context = browser.new_context()
    page = watch(context)
    page.goto(f"{base}/dev/mail")
    mail = page.locator("article.mail").filter(has=page.locator("dd.to", has_text=email))
    shoot(page, "en-dev-mail")
    mail.locator(f"a[href='{link_in(invitation, base, '/invitations/')}']").click()
    page.fill("#f-password", "password1234")  # a common one: the API refuses it, the page says why
    page.click("form button[type=submit]")
    assert page.locator("#e-password").is_visible()
    page.fill("#f-password", FIRST_PASSWORD)
    page.click("form button[type=submit]")
    assert page.locator("p.ok[role=status]").is_visible()
    assert page.input_value("#email") == email
    shoot(page, "en-invitation-accepted")

    # Signed in, they change the password in My account and stay signed in.
    page.fill("#password", FIRST_PASSWORD)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.click("nav a[href='/account']")
    assert page.input_value("#f-name") == "Aygul Tursun"
    page.fill("#f-current_password", "not the password at all")
    page.fill("#f-new_password", SECOND_PASSWORD)
    page.click("#password button[type=submit]")
    assert page.locator("#e-current_password").is_visible()
    page.fill("#f-current_password", FIRST_PASSWORD)
    page.fill("#f-new_password", SECOND_PASSWORD)
    page.click("#password button[type=submit]")
    page.wait_for_url(f"{base}/account?done=password")
    assert page.locator("p.ok[role=status]").is_visible()
    page.goto(f"{base}/account")  # the session goes on with the tokens the change returned
    assert page.url == f"{base}/account"
    shoot(page, "en-account")
    page.click("form[action='/sign-out'] button[type=submit]")

    # Signed out, they forget it: the reset link comes by mail, once. An address without an account gets the
    # same answer (and no mail).
    page.goto(f"{base}/")
    page.click("a[href='/forgot-password']")
    page.fill("#email", f"nobody-{uuid.uuid4().hex[:8]}@test.citypair")
    page.click("form button[type=submit]")
    answer_for_nobody = page.locator("p.ok[role=status]").inner_text()
    page.goto(f"{base}/forgot-password")
    page.fill("#email", email)
    page.click("form button[type=submit]")
    assert page.locator("p.ok[role=status]").inner_text() == answer_for_nobody
    reset = mails_to(stack, email, 2)[1]
    link = link_in(reset, base, "/password-reset/")
    page.goto(link)
    page.fill("#f-password", THIRD_PASSWORD)
    page.click("form button[type=submit]")
    assert page.locator("p.ok[role=status]").is_visible()
    page.goto(link)
    page.fill("#f-password", "yet another silk road phrase")
    page.click("form button[type=submit]")
    assert page.locator(".alert[role=alert]").is_visible(), "a reset link works once"

    # The old password no longer works; the new one does.
    sign_in(page, base, email, SECOND_PASSWORD)
    assert page.locator(".alert[role=alert]").is_visible()
    sign_in(page, base, email, THIRD_PASSWORD)
    page.wait_for_url(f"{base}/")
    assert page.locator(".who").inner_text() == email
    assert not page.errors
    context.close()


def test_an_official_gets_no_user_list_and_a_coordinator_no_admin_buttons(stack, admin, browser):
    base = stack.config.gateway_url
    official = create_user(admin, ["official"])
    context = browser.new_context()
    page = watch(context)
    sign_in(page, base, official["email"], PASSWORD)
    page.wait_for_url(f"{base}/")
    assert page.locator("nav a[href='/users']").count() == 0
    response = page.goto(f"{base}/users")
    assert response.status == 403 and page.locator(".alert[role=alert]").is_visible()
    forged = page.request.post(f"{base}/users/{official['id']}/disabled", form={"csrf": "forged", "disabled": "true"})
    assert forged.status == 400
    context.close()

    coordinator = create_user(admin, ["coordinator"])
    context = browser.new_context()
    page = watch(context)
    sign_in(page, base, coordinator["email"], PASSWORD)
    page.wait_for_url(f"{base}/")
    response = page.goto(f"{base}/users?q={official['email']}")
    assert response.status == 200
    row = page.locator(f"#user-{official['id']}")
    assert row.locator("input[name=city_ids]").count() == 1, "coordinators bind officials to cities"
    assert row.locator("input[name=roles]").count() == 0
    assert row.locator("form[action$='/disabled'], form[action$='/password-reset']").count() == 0
    invitable = page.locator("#invite input[name=roles]").evaluate_all("(boxes) => boxes.map((b) => b.value)")
    assert sorted(invitable) == ["observer", "official"]
    # What the page leaves out, the API refuses anyway: a coordinator's forced reset is a 403 page.
    csrf = page.locator("#invite input[name=csrf]").input_value()
    refused = page.request.post(f"{base}/users/{official['id']}/password-reset", form={"csrf": csrf})
    assert refused.status == 403
    assert not page.errors
    context.close()


def test_an_unsubscribe_link_changes_nothing_until_its_button_is_pressed(stack, admin, browser):
    base = stack.config.gateway_url
    city = str(uuid.uuid4())
    official = create_user(admin, ["official"], [city])
    with client_for(base, official["email"]) as client:
        preferences = client.get("/api/v1/me/preferences").json()
        preferences["notifications"]["proposal_transitions"] = "immediate"
        assert client.put("/api/v1/me/preferences", json=preferences).status_code == 200
        approved = EVENT_FOR_STATUS["approved"](
            proposal_id=f"p-{city}",
            title="Kashgar–Osh logistics hub",
            city_ids=[city],
            themes=["logistics"],
            from_status="under_review",
            to_status="approved",
        )
        publish(stack, new_event(approved, source="/test", subject=f"p-{city}"))
        (mail,) = mails_to(stack, official["email"], 1)

        context = browser.new_context()
        page = watch(context)
        page.goto(link_in(mail, base, "/unsubscribe/"))  # what a mail scanner does: nothing changes
        assert client.get("/api/v1/me/preferences").json()["notifications"]["proposal_transitions"] == "immediate"
        page.click("form[action^='/unsubscribe/'] button[type=submit]")
        assert page.locator("p.ok[role=status]").is_visible()
        assert client.get("/api/v1/me/preferences").json()["notifications"]["proposal_transitions"] == "off"
        page.goto(f"{base}/unsubscribe/{'x' * 40}")  # a link made up, or mangled on its way
        page.click("form[action^='/unsubscribe/'] button[type=submit]")
        assert page.locator(".alert[role=alert]").is_visible()
        assert not page.errors
        context.close()


def test_an_admin_changes_roles_and_cities_disables_enables_and_forces_a_reset(stack, admin, browser):
    base = stack.config.gateway_url
    first, second = new_city(admin, "Osh"), new_city(admin, "Khujand")
    official = create_user(admin, ["official"], [first])
    context = browser.new_context()
    page = watch(context)
    sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{base}/users")
    page.fill("#q", official["email"])
    page.click("form[role=search] button[type=submit]")
    row = page.locator(f"#user-{official['id']}")
    assert page.locator("#users tbody tr").count() == 1 and row.is_visible()

    row.locator(f"#r-{official['id']}-observer").check()
    row.locator(f"#c-{official['id']}").fill(f"{first}, {second}")
    row.locator("button[type=submit]", has_text="Save").click()
    assert page.locator("p.ok[role=status]").is_visible()
    user = admin.get(f"/api/v1/users/{official['id']}").json()
    assert user["roles"] == ["observer", "official"] and sorted(user["city_ids"]) == sorted([first, second])
    assert "q=" in page.url, "the list keeps its filter"

    # No role at all: the API names the field, the page shows it in the user's row.
    for box in row.locator("input[name=roles]").all():
        box.uncheck()
    row.locator("button[type=submit]", has_text="Save").click()
    assert page.locator(f"#user-{official['id']} [id='e-{official['id']}.roles']").is_visible()

    page.goto(f"{base}/users?q={official['email']}")
    row.locator("form[action$='/disabled'] button").click()
    assert admin.get(f"/api/v1/users/{official['id']}").json()["disabled"] is True
    page.goto(f"{base}/users?q={official['email']}&disabled=true")
    row.locator("form[action$='/disabled'] button").click()
    assert admin.get(f"/api/v1/users/{official['id']}").json()["disabled"] is False
    assert row.count() == 0, "back to the list of disabled users, which no longer holds them"

    page.goto(f"{base}/users?q={official['email']}")
    row.locator("form[action$='/password-reset'] button").click()
    assert page.locator("p.ok[role=status]").is_visible()
    (mail,) = mails_to(stack, official["email"], 1)
    assert f"{base}/password-reset/" in mail
    assert sign_in_api(base, official["email"], PASSWORD).status_code == 401, "the old password stops working"
    assert not page.errors
    context.close()


@pytest.mark.parametrize("path", ["/account", "/users", "/forgot-password", "/dev/mail"])
def test_account_pages_hold_no_inline_script_and_label_every_field(stack, browser, path):
    context = browser.new_context()
    page = watch(context)
    sign_in(page, stack.config.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.wait_for_url(stack.config.gateway_url + "/")
    response = page.goto(stack.config.gateway_url + path)
    assert response.status == 200
    html = page.content()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for field in page.locator("input:not([type=hidden]), select").all():
        field_id = field.get_attribute("id")
        assert field_id and page.locator(f"label[for='{field_id}']").count() == 1, field_id
    assert not page.errors
    context.close()
