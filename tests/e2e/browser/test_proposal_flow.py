"""A pilot zone through the pages only: drafted from a suggestion, confirmed by the partner city, submitted,
reviewed with a private note, approved, activated, tracked (milestone, KPI) and exported; drafting and submitting
with the keyboard alone; and two people editing the same proposal (the 412 explained)."""

import csv
import io
import re
import uuid
from pathlib import Path

import pytest

from tests.e2e.browser.session import sign_in
from tests.support import city_body, create_user, eventually, partner_of

pytestmark = pytest.mark.browser
PROPOSAL_URL = re.compile(r"/pilot-zones/([0-9a-f-]{36})(\?saved=1)?(#.*)?$")


@pytest.fixture(scope="module")
def pair(stack, admin):
    """Two cities that complete each other, an official of each, and a coordinator."""
    tag = uuid.uuid4().hex[:6]
    home = {
        **city_body(f"Xi'an {tag}"),
        "themes": {"ai": {"offer": 5, "need": 0}, "ecommerce": {"offer": 0, "need": 4}},
    }
    a = admin.post("/api/v1/cities", json=home).json()["id"]
    b = admin.post("/api/v1/cities", json=partner_of(home, f"Almaty {tag}")).json()["id"]
    eventually(
        lambda: b in [p["city_id"] for p in admin.get(f"/api/v1/cities/{a}/partners").json().get("items", [])],
        what="matching to know both cities",
    )
    return {
        "a": a,
        "b": b,
        "b_name": f"Almaty {tag}",
        "official_a": create_user(admin, ["official"], [a])["email"],
        "official_b": create_user(admin, ["official"], [b])["email"],
        "coordinator": create_user(admin, ["coordinator"])["email"],
    }


def proposal_id(page) -> str:
    page.wait_for_url(PROPOSAL_URL)
    return PROPOSAL_URL.search(page.url).group(1)


def withdraw(page, base: str, pid: str) -> None:
    page.goto(f"{base}/pilot-zones/{pid}")
    page.locator("button[name=to][value=withdrawn]").click()
    assert page.locator("#status").get_attribute("data-status") == "withdrawn"


def test_from_suggestion_to_export(stack, admin, browser, pair, shoot):
    base, a, b = stack.config.gateway_url, pair["a"], pair["b"]
    official = sign_in(browser, base, pair["official_a"])

    # A suggestion, its explanation, and the proposal drafted from it: both cities and the pair's themes filled in.
    official.goto(f"{base}/cities/{a}/partners")
    official.locator(f"a[href='/pairs/{a}/{b}']").click()
    official.wait_for_url(f"{base}/pairs/{a}/{b}")
    official.locator("#propose button").click()
    official.wait_for_url(re.compile(r"/pilot-zones/new\?"))
    assert official.locator("input[name=city_ids]:checked").count() == 2
    assert {official.locator("#t-ai").is_checked(), official.locator("#t-ecommerce").is_checked()} == {True}
    official.fill("#f-title", "Silk Road AI corridor")
    official.fill("#f-objectives", "Train 200 engineers\nOpen a cross-border e-commerce hub")
    official.fill("#f-activities", "Joint lab | shared GPU cluster\nExchange programme")
    official.fill("#f-budget_amount", "1500000")
    official.fill("#f-budget_currency", "XXQ")  # not a currency: the API names the field, the page shows it there
    official.fill("#f-start_date", "2027-01-01")
    official.fill("#f-end_date", "2028-12-31")
    official.locator("#save-proposal").click()
    assert official.locator("#e-budget_currency").is_visible()
    assert official.locator("#f-budget_currency").get_attribute("aria-invalid") == "true"
    assert official.locator("#f-title").input_value() == "Silk Road AI corridor"  # nothing typed is lost
    shoot(official, "en-proposal-new-error")
    official.fill("#f-budget_currency", "cny")
    official.check("#f-budget_public")
    official.locator("#save-proposal").click()
    pid = proposal_id(official)
    assert official.locator("#status").get_attribute("data-status") == "draft"
    plan = official.locator("dl.facts").inner_text()
    assert "Train 200 engineers" in plan and "1,500,000 CNY" in plan and "shared GPU cluster" in plan
    # The drafter's city counts as confirmed; the partner city has not confirmed, so it cannot be submitted yet.
    assert official.locator("ul.members .ok").count() == 1
    official.locator("button[name=to][value=submitted]").click()
    assert pair["b_name"] in official.locator("#refused").inner_text()  # the page says who has not confirmed

    # The partner city's official confirms.
    partner = sign_in(browser, base, pair["official_b"])
    partner.goto(f"{base}/pilot-zones/{pid}")
    partner.locator(f"form[action='/pilot-zones/{pid}/members/{b}/confirm'] button").click()
    assert partner.locator("ul.members .ok").count() == 2

    # Submitted, with a comment the timeline keeps.
    official.goto(f"{base}/pilot-zones/{pid}")
    official.fill("#comment", "Both cities confirmed")
    official.locator("button[name=to][value=submitted]").click()
    assert official.locator("#status").get_attribute("data-status") == "submitted"
    assert "Both cities confirmed" in official.locator("ol.timeline").inner_text()
    assert official.locator("#edit-proposal").count() == 0  # not editable once submitted

    # The coordinator takes it up from the board and reviews it with a private note.
    reviewer = sign_in(browser, base, pair["coordinator"])
    reviewer.goto(f"{base}/pilot-zones")
    reviewer.locator(f"a[href='/pilot-zones/{pid}']").first.click()
    reviewer.locator("button[name=to][value=under_review]").click()
    assert reviewer.locator("#status").get_attribute("data-status") == "under_review"
    assert reviewer.locator("#coordinator").inner_text() == "you"  # taking it up assigns them
    note = f"Budget looks high; check the GPU quote {uuid.uuid4().hex[:6]}"
    reviewer.fill("#comment-body", note)
    reviewer.check("#comment-private")
    reviewer.locator("#new-comment button[type=submit]").click()
    private = reviewer.locator("li.comment.private", has_text=note)
    assert private.count() == 1 and "Private reviewer note" in private.inner_text()
    # A public question, answered in its thread by the official.
    reviewer.fill("#comment-body", "Which university hosts the lab?")
    reviewer.locator("#new-comment button[type=submit]").click()

    official.goto(f"{base}/pilot-zones/{pid}")
    assert note not in official.content()  # the private note is the coordinators' alone
    assert official.locator("#comment-private").count() == 0
    assert official.locator("form[action$='/assign']").count() == 0  # assigning is for coordinators and admins
    question = official.locator("li.comment", has_text="Which university hosts the lab?")
    question.locator("summary").click()
    question.locator("textarea").fill("Xi'an Jiaotong University")
    question.locator("button[type=submit]").click()
    official.wait_for_url(re.compile(rf"/pilot-zones/{pid}"))
    assert official.locator("li.comment.depth-1", has_text="Xi'an Jiaotong University").count() == 1

    reviewer.goto(f"{base}/pilot-zones/{pid}")
    for step in ("approved", "active"):
        reviewer.locator(f"button[name=to][value={step}]").click()
        assert reviewer.locator("#status").get_attribute("data-status") == step
    assert reviewer.locator("#edit-proposal").count() == 0  # only delivery tracking changes now

    # Delivery: a milestone, a KPI and a document, each saved against the version the page showed.
    reviewer.fill("#milestones-0-title", "Lab opened")
    reviewer.fill("#milestones-0-due_date", "2027-06-30")
    reviewer.locator("#save-milestones").click()
    reviewer.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))
    assert reviewer.locator("#milestones-0-title").input_value() == "Lab opened"
    reviewer.fill("#kpis-0-name", "Engineers trained")
    reviewer.fill("#kpis-0-target", "200")
    reviewer.fill("#kpis-0-actual", "35")
    reviewer.fill("#kpis-0-unit", "people")
    reviewer.locator("#save-kpis").click()
    reviewer.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))
    reviewer.fill("#documents-0-title", "Lab agreement")
    reviewer.fill("#documents-0-url", "https://example.org/lab-agreement.pdf")
    reviewer.locator("#save-documents").click()
    reviewer.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))
    assert reviewer.locator("#kpis-0-actual").input_value() == "35"
    assert reviewer.locator("#documents-0-url").input_value() == "https://example.org/lab-agreement.pdf"
    reviewer.check("#milestones-0-done")
    reviewer.locator("#save-milestones").click()
    reviewer.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))
    assert reviewer.locator("#milestones-0-done").is_checked()
    timeline = reviewer.locator("ol.timeline").inner_text()
    assert "Milestones" in timeline and "KPIs" in timeline and "Status changed" in timeline
    shoot(reviewer, "en-proposal-delivery")

    # The official sees the same delivery (and may track it too); the private note stays hidden.
    official.goto(f"{base}/pilot-zones/{pid}")
    assert official.locator("#kpis-0-name").input_value() == "Engineers trained"
    assert note not in official.content()

    # Export what the board shows (active proposals) and find the row.
    reviewer.goto(f"{base}/pilot-zones")
    reviewer.select_option("#status", "active")
    reviewer.locator("form.filters button[type=submit]").click()
    reviewer.wait_for_url(re.compile(r"/pilot-zones\?status=active"))
    assert reviewer.locator(f"a[href='/pilot-zones/{pid}']").count() == 1
    shoot(reviewer, "en-board-filtered")
    with reviewer.expect_download() as download:
        reviewer.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    row = next(r for r in rows if r["id"] == pid)
    assert {r["status"] for r in rows} == {"active"}
    assert row["title"] == "Silk Road AI corridor" and row["milestones"] == "1" and row["kpis"] == "1"
    assert set(row["city_ids"].split("|")) == {a, b} and row["budget_currency"] == "CNY"
    exported = reviewer.request.get(f"{base}/pilot-zones/export.json?status=active").json()
    assert [p["kpis"][0]["actual"] for p in exported if p["id"] == pid] == [35]
    with reviewer.expect_download() as download:
        reviewer.locator("#export-xlsx").click()
    assert Path(download.value.path()).read_bytes()[:2] == b"PK"  # a workbook is a zip

    # The same pages in Chinese.
    reviewer.goto(f"{base}/pilot-zones/{pid}?lang=zh")
    assert "里程碑" in reviewer.locator("#h-milestones").inner_text() and "审核人内部备注" in reviewer.content()
    assert reviewer.locator("#status").inner_text() == "实施中"
    shoot(reviewer, "zh-proposal-delivery")
    official.goto(f"{base}/pilot-zones/new?lang=zh")
    assert "提议试验区" in official.locator("h1").inner_text()
    shoot(official, "zh-proposal-new")
    for page in (official, partner, reviewer):
        assert page.errors == [], page.errors


def test_a_service_rule_is_said_in_the_page_language(stack, browser, pair):
    """pilot_zones refuses an end before the start by its code; the Chinese page says so in Chinese, and nothing
    is drafted."""
    base = stack.config.gateway_url
    official = sign_in(browser, base, pair["official_a"])
    official.goto(f"{base}/pilot-zones/new?lang=zh&city_ids={pair['a']}&city_ids={pair['b']}")
    assert official.locator("input[name=city_ids]:checked").count() == 2
    official.fill("#f-title", "Dates the wrong way round")
    official.fill("#f-start_date", "2028-01-01")
    official.fill("#f-end_date", "2027-01-01")
    official.locator("#save-proposal").click()
    assert official.locator("#e-end_date").inner_text() == "结束日期早于开始日期。"
    assert official.locator("#f-end_date").get_attribute("aria-invalid") == "true"
    assert not PROPOSAL_URL.search(official.url)  # still the form, with what was typed
    assert official.locator("#f-title").input_value() == "Dates the wrong way round"
    assert official.errors == [], official.errors


def focus(page, selector: str, limit: int = 200) -> None:
    """Press Tab until the element matching `selector` has the focus (the way a keyboard user gets there)."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_drafting_and_submitting_with_the_keyboard_alone(stack, admin, browser, pair, shoot):
    """Tab, Enter, Space and typing: no click from the dashboard to a submitted proposal."""
    base = stack.config.gateway_url
    official = sign_in(browser, base, pair["official_a"])
    focus(official, "nav a[href='/pilot-zones']")
    official.keyboard.press("Enter")
    official.wait_for_url(f"{base}/pilot-zones")
    focus(official, "#new-proposal")
    official.keyboard.press("Enter")
    official.wait_for_url(f"{base}/pilot-zones/new")
    # The partner city is found by name and added.
    focus(official, "#find")
    official.keyboard.type(pair["b_name"])
    official.keyboard.press("Enter")
    official.wait_for_url(re.compile(r"/pilot-zones/new\?.*find="))
    focus(official, "ul.found a")
    official.keyboard.press("Enter")
    official.wait_for_url(re.compile(rf"/pilot-zones/new\?.*city_ids={pair['b']}"))
    assert official.locator("input[name=city_ids]:checked").count() == 2
    focus(official, "#f-title")
    official.keyboard.type("Keyboard-made logistics zone")
    focus(official, "#t-logistics")
    official.keyboard.press("Space")
    focus(official, "#f-objectives")
    official.keyboard.type("Halve customs clearance time")
    focus(official, "#save-proposal")
    shoot(official, "en-proposal-new")
    official.keyboard.press("Enter")
    pid = proposal_id(official)
    assert official.locator("#t-logistics").count() == 0 and "Halve customs" in official.content()

    partner = sign_in(browser, base, pair["official_b"])
    partner.goto(f"{base}/pilot-zones/{pid}")
    focus(partner, "button.confirm")
    with partner.expect_navigation():
        partner.keyboard.press("Space")
    assert partner.locator("ul.members .ok").count() == 2

    official.reload()
    focus(official, "#comment")
    official.keyboard.type("Ready for review")
    focus(official, "button[name=to][value=submitted]")
    with official.expect_navigation():
        official.keyboard.press("Enter")
    assert official.locator("#status").get_attribute("data-status") == "submitted"
    withdraw(official, base, pid)
    for page in (official, partner):
        assert page.errors == [], page.errors


def test_two_people_edit_the_same_proposal(stack, admin, browser, pair, shoot):
    """The second save is refused (412): the page shows what changed beside what they wrote, and re-applies it."""
    base = stack.config.gateway_url
    first = sign_in(browser, base, pair["official_a"])
    first.goto(f"{base}/pilot-zones/new?city_ids={pair['a']}&city_ids={pair['b']}")
    first.fill("#f-title", "Telemedicine link")
    first.locator("#save-proposal").click()
    pid = proposal_id(first)

    second = sign_in(browser, base, pair["official_b"])
    for page in (first, second):
        page.goto(f"{base}/pilot-zones/{pid}/edit")
    first.fill("#f-title", "Telemedicine link, phase 1")
    first.locator("#save-proposal").click()
    first.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))

    second.fill("#f-title", "Telemedicine and AI link")
    second.fill("#f-objectives", "Remote consultations in 10 hospitals")
    second.locator("#save-proposal").click()
    conflict = second.locator("section.conflict")
    assert conflict.is_visible()
    rows = {r.locator("th").inner_text(): r.locator("td").all_inner_texts() for r in conflict.locator("tbody tr").all()}
    assert rows["Title"] == ["Telemedicine link, phase 1", "Telemedicine and AI link"]
    assert rows["Objectives"] == ["—", "Remote consultations in 10 hospitals"]
    assert second.locator("#f-title").input_value() == "Telemedicine and AI link"  # what they wrote is kept
    shoot(second, "en-proposal-conflict")
    second.locator("#save-proposal").click()  # re-applied over the current version
    second.wait_for_url(re.compile(rf"/pilot-zones/{pid}\?saved=1"))
    saved = admin.get(f"/api/v1/pilot-zones/{pid}").json()
    assert saved["title"] == "Telemedicine and AI link"
    assert saved["objectives"] == ["Remote consultations in 10 hospitals"]
    withdraw(first, base, pid)
    for page in (first, second):
        assert page.errors == [], page.errors
