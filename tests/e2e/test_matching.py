"""Matching through the gateway: explanations, decisions and their events, rounds, clusters, bad input."""

import uuid

import pytest

from tests.support import city_body, eventually, partner_of, stream_events


@pytest.fixture(scope="module")
def gateway(coordinator):
    return coordinator


def register(gateway, body) -> str:
    response = gateway.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def known(gateway, *city_ids):
    for city_id in city_ids:
        eventually(lambda c=city_id: gateway.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="in matching")


@pytest.fixture(scope="module")
def pair(gateway):
    tag = uuid.uuid4().hex[:6]
    xian = city_body(f"Xi'an {tag}", timezone="Asia/Shanghai", corridors=["china_central_asia_west_asia"])
    a = register(gateway, xian)
    b = register(
        gateway,
        {**partner_of(xian, f"Almaty {tag}"), "timezone": "Asia/Almaty", "corridors": ["china_central_asia_west_asia"]},
    )
    known(gateway, a, b)
    return a, b


def test_partners_explain_factors_themes_and_constraints(gateway, pair):
    a, b = pair
    body = eventually(lambda: (r := gateway.get(f"/api/v1/cities/{a}/partners", params={"k": 5}).json())["items"] and r)
    best = body["items"][0]
    assert best["city_id"] == b
    assert best["score"] == pytest.approx(sum(best["contributions"].values()), abs=1e-5)
    assert best["contributions"]["corridor"] == pytest.approx(body["weights"]["corridor"])
    assert best["themes_to_partner"][0]["text"].endswith("offers ai at 5, " + best["name"] + " needs it at 5")
    assert "both_gain" in best["constraints_passed"]
    assert body["weights_version"] and body["rules"]["allow_same_country"] is False


def test_match_explains_any_pair_including_why_it_is_excluded(gateway, pair):
    a, b = pair
    match = gateway.get(f"/api/v1/matches/{a}/{b}").json()
    assert match["eligible"] is True and match["status"] == "open"
    assert match["score"] == pytest.approx(sum(match["contributions"].values()), abs=1e-5)
    same = register(gateway, city_body(f"Lanzhou {uuid.uuid4().hex[:6]}"))
    known(gateway, same)
    excluded = gateway.get(f"/api/v1/matches/{a}/{same}").json()
    assert excluded["eligible"] is False
    failed = {c["name"]: c for c in excluded["checks"] if not c["passed"]}
    assert "same_country_allowed" in failed and "not allowed" in failed["same_country_allowed"]["detail"]
    assert failed["same_country_allowed"]["code"] == "same_country_not_allowed"
    assert failed["same_country_allowed"]["params"] == {"country_a": "CN", "country_b": "CN"}


def test_bad_input(gateway, pair, official_of):
    a, b = pair
    assert gateway.get("/api/v1/cities/no-such-city/partners").status_code == 404
    assert gateway.get(f"/api/v1/matches/{a}/no-such-city").status_code == 404
    for k in (0, 101):
        response = gateway.get(f"/api/v1/cities/{a}/partners", params={"k": k})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.k"
    assert gateway.get(f"/api/v1/cities/{a}/partners", params={"theme": "nope"}).status_code == 422
    third = register(gateway, city_body(f"Third {uuid.uuid4().hex[:6]}", country_code="UZ"))
    decision = {"decision": "accept", "reason": "complementary_themes"}
    assert official_of(third).post(f"/api/v1/matches/{a}/{b}/decision", json=decision).status_code == 403
    assert (
        gateway.post(f"/api/v1/matches/{a}/{b}/decision", json=decision).status_code == 403
    )  # coordinators do not decide
    wrong = official_of(a).post(f"/api/v1/matches/{a}/{b}/decision", json={"decision": "decline", "reason": "corridor"})
    assert wrong.status_code == 422
    (error,) = wrong.json()["errors"]  # the rule by its code, and the reasons a decline takes, for the pages
    assert (error["field"], error["type"], error["params"]["decision"]) == ("reason", "reason_not_allowed", "decline")
    assert "too_far" in error["params"]["allowed"] and "corridor" not in error["params"]["allowed"]


def test_both_accept_publishes_a_reproducible_record(stack, gateway, pair, official_of):
    a, b = pair
    first = official_of(a).post(
        f"/api/v1/matches/{a}/{b}/decision", json={"decision": "accept", "reason": "complementary_themes"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "open"
    second = official_of(b).post(
        f"/api/v1/matches/{b}/{a}/decision", json={"decision": "accept", "reason": "shared_priorities", "text": "yes"}
    )
    assert second.json()["status"] == "accepted"
    events = eventually(
        lambda: [e for e in stream_events(stack, "matching.match.accepted.v1") if set(e["data"]["city_ids"]) == {a, b}],
        what="the accepted event",
    )
    data = events[0]["data"]
    assert data["score"] == pytest.approx(sum(data["factors"].values()), abs=1e-5)
    assert set(data["profile_versions"]) == {a, b} and data["weights_version"] and "ai" in data["themes"]
    eventually(lambda: b not in [p["city_id"] for p in gateway.get(f"/api/v1/cities/{a}/partners").json()["items"]])


def test_decline_excludes_the_pair_and_is_kept(stack, gateway, official_of):
    base = city_body(f"Kashgar {uuid.uuid4().hex[:6]}")
    a, b = register(gateway, base), register(gateway, partner_of(base, f"Osh {uuid.uuid4().hex[:6]}", "KG"))
    known(gateway, a, b)
    declined = official_of(b).post(
        f"/api/v1/matches/{a}/{b}/decision", json={"decision": "decline", "reason": "too_far", "text": "later"}
    )
    assert declined.status_code == 201 and declined.json()["city_id"] == b
    match = gateway.get(f"/api/v1/matches/{a}/{b}").json()
    assert match["status"] == "declined"
    assert not {c["name"]: c["passed"] for c in match["checks"]}["not_declined"]
    assert b not in [p["city_id"] for p in gateway.get(f"/api/v1/cities/{a}/partners").json()["items"]]
    eventually(lambda: [e for e in stream_events(stack, "matching.match.declined.v1") if b in e["data"]["city_ids"]])
    again = official_of(a).post(f"/api/v1/matches/{a}/{b}/decision", json={"decision": "accept", "reason": "other"})
    assert again.status_code == 409 and again.json()["failed_checks"] == ["not_declined"]


def test_round_pairs_cities_and_is_stored(gateway, admin):
    tag = uuid.uuid4().hex[:6]
    ids = []
    for i in range(3):
        body = city_body(f"R{i} {tag}", themes={"iot": {"offer": 5, "need": 0}, "ai": {"offer": 0, "need": 4}})
        ids.append(register(gateway, body))
        ids.append(register(gateway, partner_of(body, f"S{i} {tag}", "UZ")))
    lonely = register(gateway, city_body(f"Lonely {tag}", themes={"ai": {"offer": 0, "need": 1}}))
    known(gateway, *ids, lonely)
    response = gateway.post("/api/v1/rounds", json={"cities": {"city_ids": [*ids, lonely]}, "capacity": 1})
    assert response.status_code == 201, response.text
    result = response.json()
    assert len(result["pairs"]) == 3
    assert result["total_score"] == pytest.approx(sum(p["score"] for p in result["pairs"]), abs=1e-5)
    assert result["unmatched"] == [{"city_id": lonely, "name": f"Lonely {tag}", "reason": "no_allowed_partner"}]
    assert admin.get(f"/api/v1/rounds/{result['id']}").json() == result
    assert gateway.get("/api/v1/rounds/no-such-round").status_code == 404
    bad = gateway.post("/api/v1/rounds", json={"capacity": 0})
    assert bad.status_code == 422


def test_clusters(gateway):
    response = gateway.get("/api/v1/clusters", params={"size": 4})
    assert response.status_code == 200, response.text
    for cluster in response.json()["items"]:
        assert 3 <= len(cluster["members"]) <= 4 and cluster["cohesion"] > 0
    assert gateway.get("/api/v1/clusters", params={"size": 9}).status_code == 422
