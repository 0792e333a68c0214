"""Two replicas of matching over one database answer alike: each applies every event to its own index.

The durable consumer hands each event to one replica, and a decision is taken by one; without followers
the other replica's index never hears of them (issue 14).
"""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from citypair_cli.stack import free_port
from tests.support import city_body, eventually


@pytest.fixture(scope="module")
def replicas(stack):
    """The stack's matching and a second replica on its own port, same database and bus."""
    port = free_port()
    part = stack.start_service("matching", port=port)
    second = f"http://{stack.config.host}:{port}"
    try:
        eventually(lambda: ready(second), timeout=60, what="the second matching replica")
        yield [stack.config.service_url("matching"), second]
    finally:
        stack.stop_part(part)


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def register(client: httpx.Client, name: str, i: int) -> str:
    # Each city distinct (place, size, themes): no two partners tie on score; neighbours in `i` differ in country.
    country = ["CN", "KZ", "UZ"][i % 3]
    themes = {"ai": {"offer": 1 + i % 5, "need": 1 + (i * 3) % 5}, "ecommerce": {"offer": 1 + (i * 2) % 5, "need": 3}}
    body = city_body(name, country_code=country, latitude=30 + i * 0.37, longitude=70 + i * 0.53, themes=themes)
    response = client.post("/api/v1/cities", json={**body, "population": 500_000 + 7_919 * i})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def partners(url: str, client: httpx.Client, city_id: str) -> list | None:
    response = httpx.get(f"{url}/api/v1/cities/{city_id}/partners", params={"k": 100}, headers=client.headers)
    if response.status_code != 200:
        return None
    return sorted((p["city_id"], round(p["score"], 6)) for p in response.json()["items"])


def knows(url: str, client: httpx.Client, a: str, b: str) -> bool:
    return httpx.get(f"{url}/api/v1/matches/{a}/{b}", headers=client.headers).status_code == 200


def decide(url: str, client: httpx.Client, a: str, b: str, decision: str, reason: str) -> httpx.Response:
    body = {"decision": decision, "reason": reason}
    return httpx.post(f"{url}/api/v1/matches/{a}/{b}/decision", json=body, headers=client.headers, timeout=30)


def test_two_replicas_return_identical_partners_after_a_burst_of_events(stack, coordinator, official_of, replicas):
    run = uuid.uuid4().hex[:6]
    before = [register(coordinator, f"Early {run} {i}", i) for i in range(6)]
    eventually(lambda: partners(replicas[0], coordinator, before[-1]) is not None, timeout=30, what="replica 1")

    # The burst: new cities and edits through the gateway (both replicas' consumers take a share), then
    # decisions taken at one replica or the other.
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda i: register(coordinator, f"Burst {run} {i}", i), range(6, 30)))
        edits = [{"population": 900_000 + i} for i in range(10)]
        list(pool.map(lambda c, e: coordinator.patch(f"/api/v1/cities/{c}", json=e), burst[:10], edits))
    cities = before + burst
    accepted = [(cities[i], cities[i + 1]) for i in range(0, 8, 2)]
    declined = [(cities[i], cities[i + 1]) for i in range(10, 18, 2)]
    for a, b in accepted + declined:
        eventually(lambda a=a, b=b: all(knows(url, coordinator, a, b) for url in replicas), timeout=30, what="pair")
    for n, (a, b) in enumerate(accepted):
        first, second = replicas if n % 2 else replicas[::-1]
        assert decide(first, official_of(a), a, b, "accept", "complementary_themes").status_code == 201
        assert decide(second, official_of(b), b, a, "accept", "shared_priorities").json()["status"] == "accepted"
    for n, (a, b) in enumerate(declined):
        assert decide(replicas[n % 2], official_of(b), a, b, "decline", "too_far").status_code == 201

    def converged() -> bool:
        for city in cities:
            first, second = (partners(url, coordinator, city) for url in replicas)
            if first is None or first != second:
                return False
        return True

    eventually(converged, timeout=60, interval=0.5, what="both replicas giving the same partners for every city")
    for url in replicas:
        for a, b in accepted + declined:  # partners already, or declined: suggested by neither replica
            assert b not in [p for p, _ in partners(url, coordinator, a)]
