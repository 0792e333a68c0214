"""Publishing a programme round through the gateway: who may, once however many publish at once, and the event."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import city_body, eventually, partner_of, query, stream_events

CONCURRENT_PUBLISHES = 12


@pytest.fixture(scope="module")
def cities(coordinator):
    tag = uuid.uuid4().hex[:6]
    body = city_body(f"Urumqi {tag}", corridors=["china_central_asia_west_asia"])
    ids = []
    for city in (body, partner_of(body, f"Bishkek {tag}", "KG")):
        response = coordinator.post("/api/v1/cities", json={**city, "corridors": ["china_central_asia_west_asia"]})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for city_id in ids:
        eventually(lambda c=city_id: coordinator.get(f"/api/v1/cities/{c}/partners").status_code == 200)
    return ids


def run_round(coordinator, city_ids) -> dict:
    response = coordinator.post("/api/v1/rounds", json={"cities": {"city_ids": city_ids}, "capacity": 1})
    assert response.status_code == 201, response.text
    assert response.json()["published_at"] is None
    return response.json()


def test_only_coordinators_and_admins_publish_and_see_drafts(coordinator, official_of, anonymous, cities):
    draft = run_round(coordinator, cities)
    official = official_of(cities[0])
    assert official.post(f"/api/v1/rounds/{draft['id']}/publish").status_code == 403
    assert anonymous.post(f"/api/v1/rounds/{draft['id']}/publish").status_code == 401
    assert coordinator.post("/api/v1/rounds/no-such-round/publish").status_code == 404
    # A draft is the programme's: an official neither reads it nor finds it in the list.
    assert official.get(f"/api/v1/rounds/{draft['id']}").status_code == 403
    assert draft["id"] not in [r["id"] for r in official.get("/api/v1/rounds", params={"limit": 100}).json()["items"]]
    assert official.get("/api/v1/rounds", params={"published": "false"}).json()["total"] == 0
    listed = coordinator.get("/api/v1/rounds", params={"published": "false", "limit": 100}).json()["items"]
    mine = next(r for r in listed if r["id"] == draft["id"])
    assert mine["pair_count"] == len(draft["pairs"]) == 1 and mine["unmatched_count"] == 0
    published = coordinator.post(f"/api/v1/rounds/{draft['id']}/publish")
    assert published.status_code == 200, published.text
    assert official.get(f"/api/v1/rounds/{draft['id']}").json()["published_at"] == published.json()["published_at"]
    seen = official.get("/api/v1/rounds", params={"limit": 100}).json()["items"]
    assert draft["id"] in [r["id"] for r in seen] and all(r["published_at"] for r in seen)


def test_publishing_at_once_publishes_once_and_the_event_names_the_pairs(stack, coordinator, admin, cities):
    draft = run_round(coordinator, cities)
    clients = [
        httpx.Client(base_url=stack.config.gateway_url, headers=(coordinator if i % 2 else admin).headers, timeout=30)
        for i in range(CONCURRENT_PUBLISHES)
    ]
    release = threading.Barrier(CONCURRENT_PUBLISHES)

    def publish(client: httpx.Client) -> httpx.Response:
        release.wait()
        return client.post(f"/api/v1/rounds/{draft['id']}/publish")

    try:
        with ThreadPoolExecutor(CONCURRENT_PUBLISHES) as pool:
            answers = list(pool.map(publish, clients))
    finally:
        for client in clients:
            client.close()
    assert [a.status_code for a in answers] == [200] * CONCURRENT_PUBLISHES, [a.text for a in answers]
    assert len({(a.json()["published_at"], a.json()["published_by"]) for a in answers}) == 1
    database = stack.config.database_url("matching")
    published_by = query(database, "SELECT published_by FROM match_round WHERE id = :id", id=draft["id"])
    assert published_by == [(answers[0].json()["published_by"],)]
    # Exactly one event was written (the outbox holds every event matching ever sent) ...
    written = query(
        database,
        "SELECT payload FROM outbox WHERE type = 'matching.round.published.v1' AND payload LIKE :round",
        round=f"%{draft['id']}%",
    )
    assert len(written) == 1, written

    # ... and it arrives on the stream.
    def arrived():
        return [e for e in stream_events(stack, "matching.round.published.v1") if e["data"]["round_id"] == draft["id"]]

    found = eventually(arrived, what="the published event")
    assert len(found) == 1, found
    assert found[0]["data"]["pairs"] == [p["city_ids"] for p in draft["pairs"]]
    assert found[0]["data"]["city_ids"] == sorted(cities)
    assert found[0]["data"]["published_by"] == answers[0].json()["published_by"]
