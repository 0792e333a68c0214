"""Every page of web, as each kind of user sees it, and the data each page needs (created through the API).

Shared by the accessibility and server-time test (test_accessibility.py) and the 25,000-city bench
(tests/bench/pages.py). A page is listed once per role where what it shows differs by role.
"""

import uuid
from dataclasses import dataclass

import httpx

from tests.e2e.browser.session import sign_in
from tests.support import PASSWORD, city_body, client_for, create_user, eventually, partner_of

ANONYMOUS, ADMIN, COORDINATOR, OFFICIAL = "anonymous", "admin", "coordinator", "official"
ROLES = (ANONYMOUS, ADMIN, COORDINATOR, OFFICIAL)
# What a page draws after it has loaded, waited for before it is checked.
READY = {"/map": "#map-view[data-ready=true]"}
# The mail links' pages show their form for any token (nothing is checked or changed on GET).
LINK_TOKEN = "a" * 43
TWINS_HEADER = "city1,country1,lat1,lng1,city2,country2,lat2,lng2"  # profiles' partnership import


@dataclass(frozen=True)
class Visit:
    role: str
    path: str
    status: int = 200

    @property
    def ready(self) -> str | None:
        return READY.get(self.path.split("?")[0])

    def url(self, base: str, lang: str | None = None) -> str:
        if lang is None:
            return base + self.path
        return f"{base}{self.path}{'&' if '?' in self.path else '?'}lang={lang}"


@dataclass(frozen=True)
class Site:
    users: dict[str, tuple[str, str]]  # role: (email, password) of the user signed in for it
    visits: tuple[Visit, ...]


def seed(base_url: str, admin: httpx.Client, admin_user: tuple[str, str]) -> Site:
    """Three cities (the first with public fields, twinned with the second), an official of the first, one of the
    other two, a coordinator; a draft proposal and an active one with delivery, comments and a private note; a
    round. Then every page."""
    tag = uuid.uuid4().hex[:6]
    home = {
        **city_body(f"Xi'an {tag}"),
        "themes": {"ai": {"offer": 5, "need": 0}, "ecommerce": {"offer": 0, "need": 4}},
    }
    a = _created(admin.post("/api/v1/cities", json=home))
    b = _created(admin.post("/api/v1/cities", json=partner_of(home, f"Almaty {tag}")))
    c = _created(admin.post("/api/v1/cities", json=partner_of(home, f"Tashkent {tag}", "UZ")))
    shown = admin.patch(f"/api/v1/cities/{a}", json={"public_fields": ["population"]})
    assert shown.status_code == 200, shown.text
    twins = f"{TWINS_HEADER}\nXi'an {tag},China,34.26,108.93,Almaty {tag},Kazakhstan,43.25,76.9\n"
    twinned = admin.post("/api/v1/cities/partnerships/import", content=twins, headers={"Content-Type": "text/csv"})
    assert twinned.status_code == 200 and twinned.json()["created"] == 1, twinned.text
    eventually(
        lambda: all(admin.get(f"/api/v1/matches/{a}/{other}").status_code == 200 for other in (b, c)),
        timeout=120,
        what="matching to know the three cities",
    )
    users = {
        ADMIN: admin_user,
        OFFICIAL: (create_user(admin, ["official"], [a])["email"], PASSWORD),
        COORDINATOR: (create_user(admin, ["coordinator"])["email"], PASSWORD),
    }
    partner_email = create_user(admin, ["official"], [b, c])["email"]
    with (
        client_for(base_url, users[OFFICIAL][0]) as official,
        client_for(base_url, partner_email) as partner,
        client_for(base_url, users[COORDINATOR][0]) as coordinator,
    ):
        draft = _proposal(official, f"AI Corridor {tag}", [a, b])
        active = _proposal(official, f"E-commerce Corridor {tag}", [a, c])
        _deliver(official, partner, coordinator, active, c)
        ran = coordinator.post("/api/v1/rounds", json={"cities": {"city_ids": [a, b, c]}, "capacity": 1})
        round_id = _created(ran)
    return Site(users=users, visits=_visits(a, b, draft, active, round_id))


def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _proposal(official: httpx.Client, title: str, city_ids: list[str]) -> str:
    body = {
        "title": title,
        "city_ids": city_ids,
        "themes": ["ai", "ecommerce"],
        "objectives": ["Share what each city has learnt"],
        "start_date": "2027-01-01",
        "end_date": "2027-12-31",
    }
    return eventually(
        lambda: (r := official.post("/api/v1/pilot-zones", json=body)).status_code == 201 and r.json()["id"],
        timeout=60,
        what="pilot_zones to know the member cities",
    )


def _deliver(official: httpx.Client, partner: httpx.Client, coordinator: httpx.Client, pid: str, c: str) -> None:
    """Confirmed, submitted, reviewed (a comment, a private note), approved, active, with a milestone and a KPI."""
    path = f"/api/v1/pilot-zones/{pid}"
    assert partner.post(f"{path}/members/{c}/confirm").status_code == 200
    steps = ((official, "submitted"), (coordinator, "under_review"), (coordinator, "approved"), (coordinator, "active"))
    for step, (client, to) in enumerate(steps, 1):
        # (comments the pages show as typed: no API value in them, which a page in another language would flag)
        moved = client.post(f"{path}/transitions", json={"to": to, "comment": f"Step {step}"})
        assert moved.status_code == 200, moved.text
    assert official.post(f"{path}/comments", json={"body": "Kick-off in March"}).status_code == 201
    note = coordinator.post(f"{path}/comments", json={"body": "Budget looks thin", "private": True})
    assert note.status_code == 201, note.text
    tracking = {
        "milestones": [{"title": "Kick-off", "due_date": "2027-03-01", "status": "done"}],
        "kpis": [{"name": "Shops online", "unit": "shops", "target": 100, "actual": 40}],
    }
    version = coordinator.get(path).json()["version"]
    saved = coordinator.patch(path, json=tracking, headers={"If-Match": f'"{version}"'})
    assert saved.status_code == 200, saved.text


def _visits(a: str, b: str, draft: str, active: str, round_id: str) -> tuple[Visit, ...]:
    anonymous = [
        "/",
        "/forgot-password",
        f"/invitations/{LINK_TOKEN}",
        f"/password-reset/{LINK_TOKEN}",
        f"/unsubscribe/{LINK_TOKEN}",
        "/open-data/pilot-zones",
        "/open-data/cities",
        "/dev/mail",
    ]
    admin = [
        "/",
        "/cities",
        "/cities/new",
        f"/cities/{a}",
        f"/cities/{a}/edit",
        f"/cities/{a}/history",
        f"/cities/{a}/partners",
        f"/pairs/{a}/{b}",
        f"/cities/{a}/network",
        "/map",
        "/map/list",
        "/clusters",
        "/import",
        "/rounds",
        f"/rounds/{round_id}",
        "/pilot-zones",
        f"/pilot-zones/{active}",
        "/users",
        "/account",
    ]
    coordinator = ["/", "/rounds", "/users", f"/pilot-zones/{active}"]
    official = [
        "/",
        f"/cities/{a}",
        f"/cities/{a}/partners",
        "/pilot-zones",
        "/pilot-zones/new",
        f"/pilot-zones/{draft}",
        f"/pilot-zones/{draft}/edit",
        f"/pilot-zones/{active}",
    ]
    return (
        *(Visit(ANONYMOUS, p) for p in anonymous),
        *(Visit(ADMIN, p) for p in admin),
        *(Visit(COORDINATOR, p) for p in coordinator),
        *(Visit(OFFICIAL, p) for p in official),
        Visit(OFFICIAL, "/users", 403),  # the error page
    )


def signed_in(browser, base_url: str, user: tuple[str, str] | None, **options):
    """A browser page in a context of its own, signed in through the form as `user` (None: nobody)."""
    if user is None:
        return browser.new_context(**options).new_page()
    return sign_in(browser, base_url, user[0], password=user[1], **options)
