"""The outside attack of issue 13, kept in the suite: what each role can read, and what the gateway shows.

Contacts are read on every surface (profile, directory, history, exports, the events on the PROFILES
stream, notifications, the logs) as each role; budgets, re-targeted drafts, reviewers who are not
coordinators, web's internals and the gateway's own error answers follow. Every part is a real
process: nothing here mocks the bus, a database or a token check.
"""

import json
import uuid

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, create_user, eventually, query, stream_events

ROLES = ("observer", "other_official", "own_official", "coordinator", "admin")
EDITORS = {"own_official", "coordinator", "admin"}  # who may edit the cities below, and so see their contacts
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


def contacts(tag: str) -> dict:
    """Contacts whose every value is unique to this test run, so finding one anywhere is a leak."""
    digits = str(uuid.uuid4().int)[:8]
    return {
        "office": f"Liaison office {tag} {digits}",
        "email": f"liaison-{tag}-{digits}@city.example",
        "phone": f"+86 {digits[:4]} {digits[4:]}",
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stack, with sign-in throttling out of the way: every role signs in."""
    stack = start_stack(tmp_path_factory.mktemp("stack"), CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def observer(stack, admin):
    with client_for(stack.config.gateway_url, create_user(admin, ["observer"])["email"]) as client:
        yield client


def register(client: httpx.Client, name: str, **overrides) -> dict:
    body = city_body(f"{name} {uuid.uuid4().hex[:6]}", geonames_id=uuid.uuid4().int % 1_000_000_000 + 1, **overrides)
    response = client.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def outbox_drained(stack, service: str) -> None:
    db = stack.config.database_url(service)
    sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    eventually(lambda: query(db, sql) == [(0,)], timeout=30, what=f"{service}'s outbox to drain")


# --------------------------------------------------------------------------- 1. contacts


@pytest.fixture(scope="module")
def contact_world(stack, admin, coordinator, official_of, observer):
    """Two cities whose contacts were set at creation, by an import creating one and updating the other, by PATCH.

    The own official acts for both and has a proposal of the two submitted, so notifications exist.
    """
    given = {tag: contacts(tag) for tag in ("created", "import-new", "import-update", "patched")}
    city = register(coordinator, "Contactville", contacts=given["created"])
    rows = [
        city_body(f"Imported {uuid.uuid4().hex[:6]}", external_id=uuid.uuid4().hex, contacts=given["import-new"]),
        {**city_body(city["name"]), "geonames_id": city["geonames_id"], "contacts": given["import-update"]},
    ]
    report = admin.post("/api/v1/cities/import", content=json.dumps(rows), headers={"content-type": "application/json"})
    assert report.status_code == 200 and report.json()["accepted"] == 2, report.text
    imported = report.json()["rows"][0]["id"]
    assert [r["action"] for r in report.json()["rows"]] == ["created", "updated"]
    own = official_of(city["id"], imported)
    patched = own.patch(f"/api/v1/cities/{city['id']}", json={"contacts": given["patched"]})
    assert patched.status_code == 200, patched.text

    proposal = draft(own, [city["id"], imported])
    submitted = own.post(f"/api/v1/pilot-zones/{proposal['id']}/transitions", json={"to": "submitted"})
    assert submitted.status_code == 200, submitted.text
    clients = {
        "observer": observer,
        "other_official": official_of(register(admin, "Elsewhere")["id"]),
        "own_official": own,
        "coordinator": coordinator,
        "admin": admin,
    }
    current = {city["id"]: given["patched"], imported: given["import-new"]}
    secrets = [value for c in given.values() for value in c.values()]
    return clients, current, secrets, city


def leaked(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.parametrize("role", ROLES)
def test_a_profile_and_the_directory_show_contacts_only_to_those_who_may_edit(role, contact_world):
    clients, current, secrets, city = contact_world
    client = clients[role]
    for city_id, now in current.items():
        profile = client.get(f"/api/v1/cities/{city_id}")
        assert profile.status_code == 200
        if role in EDITORS:
            assert profile.json()["contacts"] == {**now, "website": None}
        else:
            assert profile.json()["contacts"] is None and not leaked(profile.text, secrets)
    listed = client.get("/api/v1/cities", params={"q": city["name"]})
    assert listed.status_code == 200 and listed.json()["total"] == 1
    if role not in EDITORS:
        assert not leaked(listed.text, secrets)


@pytest.mark.parametrize("role", ROLES)
def test_history_records_that_contacts_changed_never_what_they_are(role, contact_world):
    clients, current, secrets, _ = contact_world
    for city_id in current:
        history = clients[role].get(f"/api/v1/cities/{city_id}/history", params={"limit": 100})
        assert history.status_code == 200
        assert not leaked(history.text, secrets), "contacts in history, readable by anyone signed in"
        changed = [h["action"] for h in history.json()["items"] if h["changes"].get("contacts") == "changed"]
        assert changed, "history still says that contacts changed"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_never_carry_contacts(role, fmt, contact_world):
    clients, _, secrets, city = contact_world
    export = clients[role].get("/api/v1/cities/export", params={"format": fmt, "q": city["name"]})
    assert export.status_code == 200 and city["id"] in export.text
    assert not leaked(export.text, secrets)


def test_profile_events_never_carry_contacts(stack, contact_world):
    _, current, secrets, _ = contact_world
    outbox_drained(stack, "profiles")
    events = stream_events(stack, "profiles.>", "PROFILES")
    about = [e for e in events if e["subject"] in current]
    assert len(about) >= 4, "created, patched, imported (new), imported (update)"
    assert not leaked(json.dumps(events), secrets)


@pytest.mark.parametrize("role", ROLES)
def test_notifications_never_carry_contacts(role, contact_world):
    clients, _, secrets, _ = contact_world
    client = clients[role]
    if role in ("own_official", "coordinator"):  # told of the submitted proposal of the two cities
        eventually(lambda: client.get("/api/v1/me/notifications").json()["total"], what=f"{role}'s notification")
    notifications = client.get("/api/v1/me/notifications", params={"limit": 100})
    assert notifications.status_code == 200 and not leaked(notifications.text, secrets)


def test_logs_never_carry_contacts(stack, contact_world):
    _, _, secrets, _ = contact_world
    for log in stack.log_dir.glob("*.log"):
        assert not leaked(log.read_text(errors="replace"), secrets), log.name


# --------------------------------------------------------------------------- 7. re-targeted drafts


@pytest.fixture(scope="module")
def cities(admin):
    """Fresh published cities, made as needed, known to pilot_zones before they are used."""

    def make(count: int) -> list[str]:
        return [register(admin, "Zone")["id"] for _ in range(count)]

    return make


def draft(official: httpx.Client, city_ids: list[str], **fields) -> dict:
    body = {"title": f"pilot zone {uuid.uuid4().hex[:6]}", "city_ids": city_ids, **fields}
    response = eventually(
        lambda: (r := official.post("/api/v1/pilot-zones", json=body)).status_code == 201 and r,
        what=f"pilot_zones to know {city_ids}",
    )
    return response.json()


def test_an_official_cannot_move_a_draft_onto_cities_they_do_not_represent(cities, official_of):
    mine, partner, x, y = cities(4)
    own = official_of(mine)
    proposal = draft(own, [mine, partner])
    url = f"/api/v1/pilot-zones/{proposal['id']}"

    moved = own.patch(url, json={"city_ids": [x, y]})
    assert moved.status_code == 403, moved.text
    assert moved.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in moved.json()["errors"]] == ["city_ids"]
    assert own.get(url).json()["city_ids"] == [mine, partner]
    # …so the officials of those cities can still propose together.
    draft(official_of(x), [x, y])


def test_cities_added_to_a_draft_are_unconfirmed(cities, official_of):
    mine, partner, added = cities(3)
    own = official_of(mine)
    proposal = draft(own, [mine, partner])
    url = f"/api/v1/pilot-zones/{proposal['id']}"

    edited = own.patch(url, json={"city_ids": [mine, added]})
    assert edited.status_code == 200, edited.text
    assert [(m["city_id"], m["confirmed"]) for m in edited.json()["members"]] == [(mine, True), (added, False)]
    refused = own.post(f"{url}/transitions", json={"to": "submitted"})
    assert refused.status_code == 409 and refused.json()["unconfirmed"] == [added]


# --------------------------------------------------------------------------- 8a. budgets


BUDGET = 7_654_321.0


@pytest.fixture(scope="module")
def budget_world(cities, official_of, coordinator, admin, observer):
    mine, partner, elsewhere = cities(3)
    own = official_of(mine)
    fields = {
        "budget": {"amount": BUDGET, "currency": "CNY"},
        "funding_sources": [{"name": "City fund", "amount": BUDGET}],
    }
    proposal = draft(own, [mine, partner], **fields)
    edited = own.patch(
        f"/api/v1/pilot-zones/{proposal['id']}", json={"budget": {"amount": BUDGET + 1, "currency": "CNY"}}
    )
    assert edited.status_code == 200, edited.text
    clients = {
        "observer": observer,
        "other_official": official_of(elsewhere),
        "own_official": own,
        "partner_official": official_of(partner),
        "coordinator": coordinator,
        "admin": admin,
    }
    return clients, proposal, mine


SEE_BUDGET = {"own_official", "partner_official", "coordinator", "admin"}


@pytest.mark.parametrize(
    "role", ["observer", "other_official", "own_official", "partner_official", "coordinator", "admin"]
)
def test_a_budget_not_marked_public_is_for_members_and_reviewers(role, budget_world):
    clients, proposal, mine = budget_world
    client = clients[role]
    one = client.get(f"/api/v1/pilot-zones/{proposal['id']}")
    listed = client.get("/api/v1/pilot-zones", params={"city_id": mine})
    timeline = client.get(f"/api/v1/pilot-zones/{proposal['id']}/timeline", params={"limit": 100})
    assert one.status_code == listed.status_code == timeline.status_code == 200
    (in_list,) = [p for p in listed.json()["items"] if p["id"] == proposal["id"]]
    if role in SEE_BUDGET:
        assert one.json()["budget"] == in_list["budget"] == {"amount": BUDGET + 1, "currency": "CNY"}
        assert one.json()["funding_sources"] == [{"name": "City fund", "amount": BUDGET}]
        assert str(int(BUDGET)) in timeline.text
        return
    assert one.json()["budget"] is None and in_list["budget"] is None
    assert one.json()["funding_sources"] == [{"name": "City fund", "amount": None}]
    for response in (one, listed, timeline):
        assert str(int(BUDGET)) not in response.text
    (edit,) = [e for e in timeline.json()["items"] if e["action"] == "edited"]
    assert edit["details"]["changes"]["budget_amount"] == "changed"


def test_a_budget_marked_public_is_for_everyone(cities, official_of, observer):
    mine, partner = cities(2)
    proposal = draft(
        official_of(mine), [mine, partner], budget={"amount": BUDGET, "currency": "CNY"}, budget_public=True
    )
    assert observer.get(f"/api/v1/pilot-zones/{proposal['id']}").json()["budget"] == {
        "amount": BUDGET,
        "currency": "CNY",
    }


# --------------------------------------------------------------------------- 8b. reviewers are coordinators


@pytest.fixture(scope="module")
def shared_draft(cities, official_of) -> str:
    mine, partner = cities(2)
    return draft(official_of(mine), [mine, partner])["id"]


def assign(client: httpx.Client, proposal: str, coordinator_id: str) -> httpx.Response:
    return client.post(f"/api/v1/pilot-zones/{proposal}/assign", json={"coordinator_id": coordinator_id})


def refused_as_reviewer(response: httpx.Response) -> bool:
    return response.status_code == 422 and [e["field"] for e in response.json()["errors"]] == ["coordinator_id"]


@pytest.mark.parametrize("who", ["observer", "official", "admin", "unknown"])
def test_only_a_coordinator_can_be_assigned_to_review(who, admin, coordinator, shared_draft):
    target = str(uuid.uuid4()) if who == "unknown" else create_user(admin, [who])["id"]
    other = create_user(admin, ["coordinator"])["id"]
    # Once pilot_zones has heard of a user made after `target`, it has heard of `target` (one stream, in order).
    eventually(lambda: assign(coordinator, shared_draft, other).status_code == 200, what="the new coordinator")
    for caller in (coordinator, admin):
        response = assign(caller, shared_draft, target)
        assert refused_as_reviewer(response), response.text


def test_an_admin_cannot_name_themselves_reviewer(admin, shared_draft):
    response = assign(admin, shared_draft, admin.get("/api/v1/me").json()["id"])
    assert refused_as_reviewer(response), response.text


def test_role_changes_reach_who_may_review(admin, coordinator, shared_draft):
    promoted = create_user(admin, ["official"])["id"]
    demoted = create_user(admin, ["coordinator"])["id"]
    disabled = create_user(admin, ["coordinator"])["id"]
    for user in (demoted, disabled):
        eventually(lambda u=user: assign(coordinator, shared_draft, u).status_code == 200, what="a new coordinator")
    assert admin.patch(f"/api/v1/users/{promoted}", json={"roles": ["coordinator"]}).status_code == 200
    assert admin.patch(f"/api/v1/users/{demoted}", json={"roles": ["observer"]}).status_code == 200
    assert admin.patch(f"/api/v1/users/{disabled}", json={"disabled": True}).status_code == 200

    eventually(lambda: assign(coordinator, shared_draft, promoted).status_code == 200, what="the promotion")
    eventually(lambda: refused_as_reviewer(assign(coordinator, shared_draft, demoted)), what="the demotion")
    eventually(lambda: refused_as_reviewer(assign(coordinator, shared_draft, disabled)), what="the disabling")


def test_user_events_carry_roles_but_no_email(stack, admin):
    user = create_user(admin, ["coordinator"])
    assert admin.patch(f"/api/v1/users/{user['id']}", json={"roles": ["observer"]}).status_code == 200
    outbox_drained(stack, "identity")
    events = [e for e in stream_events(stack, "identity.user.>", "IDENTITY") if e["subject"] == user["id"]]
    by_type = {e["type"]: e["data"]["user"] for e in events if "user" in e["data"]}
    assert by_type["identity.user.registered.v1"]["roles"] == ["coordinator"]
    assert by_type["identity.user.roles_changed.v1"]["roles"] == ["observer"]
    assert user["email"] not in json.dumps(events)


# --------------------------------------------------------------------------- 8c, 8d. the gateway


@pytest.mark.parametrize(
    "path",
    ["/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/METRICS", "/metrics/", "/%6Detrics"],
)
def test_webs_internals_are_not_served_through_the_gateway(stack, anonymous, path):
    blocked = anonymous.get(path)
    assert blocked.status_code == 404, blocked.text[:200]
    assert blocked.headers["content-type"] == "application/problem+json"
    assert "server" not in blocked.headers


def test_web_still_serves_its_internals_to_operators_and_the_api_doc_stays_public(stack, anonymous):
    assert httpx.get(stack.config.service_url("web") + "/metrics").status_code == 200
    assert anonymous.get("/api/v1/openapi.json").json()["info"]["title"].startswith("citypair")


def test_a_body_too_large_is_answered_with_the_security_headers_and_no_server(anonymous):
    too_big = anonymous.post("/api/v1/cities", content=b"x" * 3_000_000, headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert "server" not in too_big.headers
    for header in SECURITY_HEADERS:
        assert header in too_big.headers, header
