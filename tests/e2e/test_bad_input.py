"""Bad input gets problem+json naming the field, and writes nothing to any outbox."""

import pytest

from tests.support import city_body, query


@pytest.fixture(scope="module")
def gateway(coordinator):
    return coordinator


def outbox_rows(stack) -> int:
    return sum(
        query(stack.config.database_url(name), "SELECT count(*) FROM outbox")[0][0]
        for name in ("profiles", "matching", "pilot_zones")
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**city_body(), "latitude": 91}, "latitude"),
        ({**city_body(), "longitude": "east"}, "longitude"),
        ({**city_body(), "population": -1}, "population"),
        ({**city_body(), "name": ""}, "name"),
        ({**city_body(), "name": "x" * 201}, "name"),
        ({**city_body(), "country_code": "XX"}, "country_code"),
        ({**city_body(), "themes": {"ai": {"offer": 7, "need": 0}}}, "themes.ai.offer"),
        ({**city_body(), "themes": {"teleportation": {"offer": 1, "need": 0}}}, "themes.teleportation.[key]"),
        ({**city_body(), "role": "admin"}, "role"),
        ({**city_body(), "id": "chosen-by-me"}, "id"),
        ({k: v for k, v in city_body().items() if k != "name"}, "name"),
    ],
)
def test_invalid_city_is_rejected_naming_the_field(stack, gateway, body, field):
    before = outbox_rows(stack)
    response = gateway.post("/api/v1/cities", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem
    assert outbox_rows(stack) == before


def test_a_rule_names_its_code_and_the_values_it_names(gateway):
    """A service's own rule, as a schema check does, says which it is (`type`) and the values its message names
    (`params`), for the pages to say it in their language; pydantic's own objects in its context are not sent."""
    body = {**city_body(), "country_code": "xx", "timezone": "Mars/Base", "name": "x" * 201}
    response = gateway.post("/api/v1/cities", json=body)
    assert response.status_code == 422, response.text
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert errors["country_code"] == {
        "field": "country_code",
        "message": "'XX' is not an ISO 3166-1 alpha-2 country code",
        "type": "unknown_country",
        "params": {"value": "XX"},
    }
    assert (errors["timezone"]["type"], errors["timezone"]["params"]) == ("unknown_time_zone", {"value": "Mars/Base"})
    assert (errors["name"]["type"], errors["name"]["params"]) == ("string_too_long", {"max_length": 200})


def test_malformed_json_is_a_problem(stack, gateway):
    before = outbox_rows(stack)
    response = gateway.post("/api/v1/cities", content=b'{"name": "Xi', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"
    assert outbox_rows(stack) == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/cities/nope", "/api/v1/cities/nope/partners", "/api/v1/pilot-zones/nope"],
)
def test_unknown_ids_are_404_problems(gateway, path):
    response = gateway.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "nope" in response.json()["detail"]


def test_out_of_range_query_values_are_named(gateway):
    response = gateway.get("/api/v1/cities", params={"limit": 1000})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"
    response = gateway.get("/api/v1/cities/nope/partners", params={"k": 0})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.k"


def test_rejected_transition_and_proposal_write_nothing(stack, gateway, official_of):
    gateway = official_of("a")
    before = outbox_rows(stack)
    assert gateway.post("/api/v1/pilot-zones", json={"title": "t", "city_ids": ["a"]}).status_code == 422
    assert gateway.post("/api/v1/pilot-zones", json={"title": "t", "city_ids": ["a", "a"]}).status_code == 422
    assert gateway.post("/api/v1/pilot-zones/nope/transitions", json={"to": "teleported"}).status_code == 422
    assert gateway.post("/api/v1/pilot-zones/nope/transitions", json={"to": "submitted"}).status_code == 404
    assert outbox_rows(stack) == before
