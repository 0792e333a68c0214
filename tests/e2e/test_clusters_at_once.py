"""Matching's clusters answer at once (issue 18): after a change, the clusters found before it, marked stale, while the
new ones are found in the background; the clusters page's own query is found at start, before anyone asks."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import city_body, eventually

QUERY = {"size": 3}  # not the page's query (the defaults): matching finds that one by itself at start
COUNTRIES = ["CN", "KZ", "UZ", "KG", "TJ"]  # one each: two cities of one country are never partners


@pytest.fixture(scope="module")
def gateway(coordinator):
    return coordinator


@pytest.fixture(scope="module")
def cities(gateway) -> list[str]:
    """Cities that each offer what the others need, so that any three of them make a cluster."""
    tag = uuid.uuid4().hex[:6]
    themes = {"ai": {"offer": 4, "need": 3}, "ecommerce": {"offer": 3, "need": 4}}
    ids = []
    for i, country in enumerate(COUNTRIES):
        body = city_body(f"Cluster {country} {tag}", country_code=country, longitude=70.0 + 5 * i, themes=themes)
        response = gateway.post("/api/v1/cities", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for city_id in ids:
        eventually(lambda c=city_id: gateway.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="in matching")
    return ids


def clusters(gateway) -> dict:
    response = gateway.get("/api/v1/clusters", params=QUERY)
    assert response.status_code == 200, response.text
    return response.json()


def members(found: dict) -> set[str]:
    return {m["city_id"] for cluster in found["items"] for m in cluster["members"]}


def published_in_matching(gateway, city_id: str) -> bool:
    """Whether matching's index holds the city as published (its own constraint on the city says)."""
    checks = gateway.get(f"/api/v1/cities/{city_id}/partners").json()["city_constraints"]
    return next(c["passed"] for c in checks if c["name"] == "published")


def test_after_a_change_the_clusters_come_at_once_marked_stale_then_found_anew(gateway, cities):
    first = eventually(lambda: (found := clusters(gateway))["stale"] is False and members(found) and found)
    member = first["items"][0]["members"][0]["city_id"]
    assert gateway.post(f"/api/v1/cities/{member}/retire").status_code == 200
    eventually(lambda: not published_in_matching(gateway, member), what="the retirement in matching's index")

    # Nothing has asked for this query since the change: this request starts the build and does not wait for it.
    other = next(c for c in cities if c != member)
    with ThreadPoolExecutor(2) as pool:
        asked = pool.submit(clusters, gateway)
        partners = pool.submit(gateway.get, f"/api/v1/cities/{other}/partners")
        stale, partners = asked.result(), partners.result()
    assert stale["stale"] is True and stale["computed_at"] == first["computed_at"]
    assert stale["items"] == first["items"] and member in members(stale)
    assert partners.status_code == 200 and partners.json()["items"]

    fresh = eventually(lambda: (found := clusters(gateway))["stale"] is False and found, what="the new clusters")
    assert fresh["computed_at"] > first["computed_at"]
    assert member not in members(fresh) and members(fresh)


def test_the_clusters_pages_query_is_found_at_start_before_anyone_asks(stack):
    def built_at_start() -> list[dict]:
        lines = (stack.log_dir / "matching.log").read_text(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if r.get("event") == "clusters.built" and r.get("key") == [None, 5, 10]]

    eventually(built_at_start, timeout=60, what="the default query's clusters built at start")
