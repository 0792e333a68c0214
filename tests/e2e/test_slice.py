"""The vertical slice through the Caddy gateway, every service a real process."""

import httpx
import pytest

from tests.support import city_body, eventually, partner_ids, partner_of


@pytest.fixture(scope="module")
def gateway(coordinator):
    return coordinator


def register(gateway, body) -> str:
    response = gateway.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_registered_city_reaches_matching_and_is_suggested(gateway):
    xian = city_body("Xi'an")
    a = register(gateway, xian)
    b = register(gateway, partner_of(xian, "Almaty"))
    one_sided = register(gateway, city_body("Lanzhou", themes={"ai": {"offer": 5, "need": 0}}))

    items = eventually(
        lambda: gateway.get(f"/api/v1/cities/{a}/partners", params={"k": 10}).json().get("items"),
        what="Almaty suggested to Xi'an",
    )
    assert items[0]["city_id"] == b
    best = items[0]
    assert (best["gain_to_city"], best["gain_to_partner"]) == (1.0, 1.0)
    assert best["contributions"]["complementarity"] == pytest.approx(0.5)  # its full weight (weights 2026.4)
    assert best["score"] == pytest.approx(sum(best["contributions"].values()), abs=1e-5)
    assert best["score"] > best["contributions"]["complementarity"]  # the other factors add to it
    assert one_sided not in [i["city_id"] for i in items], "a pair where one side gains nothing is never suggested"


def draft(official, city_ids: list[str], title: str = "pilot zone") -> dict:
    """Draft a proposal as soon as pilot_zones knows every member city (from profile events)."""
    created = eventually(
        lambda: (
            (r := official.post("/api/v1/pilot-zones", json={"title": title, "city_ids": city_ids})).status_code == 201
            and r
        ),
        what="pilot_zones to know the member cities",
    )
    return created.json()


def test_approved_pilot_zone_makes_partners_and_stops_the_suggestion(gateway, official_of):
    kashgar = city_body("Kashgar", themes={"logistics": {"offer": 4, "need": 2}, "iot": {"offer": 1, "need": 5}})
    a = register(gateway, kashgar)
    b = register(gateway, partner_of(kashgar, "Osh", "KG"))
    eventually(lambda: b in partner_ids(gateway, a), what="Osh suggested to Kashgar")

    official = official_of(a)
    proposal = draft(official, [a, b], "Kashgar–Osh")
    assert proposal["status"] == "draft"
    assert proposal["allowed_transitions"] == ["submitted", "withdrawn"]
    confirmed = official_of(b).post(f"/api/v1/pilot-zones/{proposal['id']}/members/{b}/confirm")
    assert confirmed.status_code == 200, confirmed.text  # every member city confirms before submission
    for actor, status in ((official, "submitted"), (gateway, "under_review"), (gateway, "approved")):
        moved = actor.post(f"/api/v1/pilot-zones/{proposal['id']}/transitions", json={"to": status})
        assert moved.status_code == 200, moved.text
    assert moved.json()["allowed_transitions"] == ["active"]

    eventually(lambda: b not in partner_ids(gateway, a), what="Osh no longer suggested to Kashgar")
    assert a not in partner_ids(gateway, b)


def test_pilot_zone_with_unknown_city_names_it(gateway, official_of):
    a = register(gateway, city_body("Urumqi"))
    official = official_of(a)
    eventually(lambda: gateway.get(f"/api/v1/cities/{a}/partners").status_code == 200, what="Urumqi in matching")
    draft(official, [a, register(gateway, city_body("Turpan"))])  # pilot_zones has caught up
    response = official.post("/api/v1/pilot-zones", json={"title": "x", "city_ids": [a, "no-such-city"]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "city_ids[1]",
            "message": "unknown city 'no-such-city'",
            "type": "unknown_city",
            "params": {"city_id": "no-such-city"},
        }
    ]


def test_forbidden_transition_lists_what_is_allowed(gateway, official_of):
    a = register(gateway, city_body("Lhasa"))
    b = register(gateway, city_body("Kathmandu", country_code="NP"))
    official = official_of(a)
    url = f"/api/v1/pilot-zones/{draft(official, [a, b])['id']}/transitions"
    by_state = gateway.post(url, json={"to": "approved"})  # a coordinator may approve, but not a draft
    assert by_state.status_code == 409
    assert by_state.json()["allowed"] == ["submitted", "withdrawn"]
    by_role = official.post(url, json={"to": "approved"})  # an official may never approve
    assert by_role.status_code == 403
    assert by_role.json()["allowed"] == ["submitted", "withdrawn"]


def test_gateway_sets_security_headers_and_serves_web(gateway):
    page = gateway.get("/")
    assert page.status_code == 200 and "citypair" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "server" not in page.headers


def test_gateway_caps_bodies_and_answers_unknown_api_paths_with_problems(gateway):
    too_big = gateway.post("/api/v1/cities", content=b"x" * 3_000_000, headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    unknown = gateway.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json()["status"] == 404


def test_each_service_reports_health_and_readiness(stack):
    for name in ("identity", "profiles", "matching", "pilot_zones", "web"):
        base = stack.config.service_url(name)
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        ready = httpx.get(base + "/readyz")
        assert ready.status_code == 200, (name, ready.text)
        assert ready.json()["service"] == name
        assert httpx.get(base + "/openapi.json").json()["info"]["title"].startswith("citypair")
    metrics = httpx.get(stack.config.service_url("profiles") + "/metrics").text
    assert "outbox_backlog" in metrics and "http_requests_total" in metrics
