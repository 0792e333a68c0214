"""Strict JSON (`citypair_shared.strict_json`): a pathological body is a 400/422 problem naming where, never a 500."""

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from citypair_shared import strict_json
from citypair_shared.deps import reject_nul
from citypair_shared.problems import install_problem_handlers
from citypair_shared.strict_json import MAX_DEPTH, MAX_KEYS, BadJson, array_items, loads, reject_bad_json


class Body(BaseModel):
    name: str
    tags: list = []
    extra: dict = {}
    amount: float = 0


def client() -> TestClient:
    app = FastAPI(dependencies=[Depends(reject_nul), Depends(reject_bad_json)])  # as build_app
    install_problem_handlers(app)

    @app.post("/json")
    async def json_route(body: Body) -> dict:
        return {"name": body.name}

    @app.post("/optional")
    async def optional_route(body: Body | None = None) -> dict:
        return {"given": body is not None}

    return TestClient(app, raise_server_exceptions=False)


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


PATHOLOGICAL = [
    ('{"name": "a", "name": "b"}', "name", "json_duplicate_key"),
    ('{"name": "a", "extra": {"k": 1, "k": 2}}', "k", "json_duplicate_key"),
    ('{"name": "a", "amount": NaN}', "body", "json_number"),
    ('{"name": "a", "amount": Infinity}', "body", "json_number"),
    ('{"name": "a", "amount": 1e400}', "body", "json_number"),
    ('{"name": "a", "amount": ' + "9" * 5000 + "}", "body", None),  # FastAPI's own parse refuses it: 400
    ('{"name": "a", "tags": ' + nested(MAX_DEPTH + 5) + "}", "tags." + ".".join(["0"] * (MAX_DEPTH - 1)), "json_depth"),
    ('{"name": "a", "tags": ' + nested(10_000) + "}", "body", None),  # past the interpreter's limit: 400
    (nested(10_000), "body", None),
    ("[" * 10_000, "body", None),
    ('{"name": "a\\u0000"}', "name", "string_nul"),
    ('{"name": "\\ud800"}', "name", "string_surrogate"),
    ('{"name": "a", "extra": {' + ",".join(f'"k{i}": 1' for i in range(MAX_KEYS + 1)) + "}}", "body", "json_keys"),
    ('{"name": "a", "extra": {"\\udfff": 1}}', "extra.\\udfff", "string_surrogate"),
    ('{"name": "a", "extra": {"\\ud800": 1, "\\ud800": 2}}', "\\ud800", "json_duplicate_key"),
]


@pytest.mark.parametrize(("body", "field", "kind"), PATHOLOGICAL, ids=lambda v: str(v)[:30])
def test_pathological_json_is_a_problem_naming_where(body, field, kind):
    response = client().post("/json", content=body.encode("utf-8", "surrogatepass"), headers=JSON)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    if kind is not None:
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert (field, kind) in [(e["field"], e["type"]) for e in errors], errors


JSON = {"content-type": "application/json"}


def test_good_json_passes_as_before():
    c = client()
    assert c.post("/json", content='{"name": "Xi\\u2019an", "tags": [[1]]}', headers=JSON).json() == {"name": "Xi’an"}
    assert c.post("/json", content='{"name": "\\ud83d\\ude00"}', headers=JSON).json() == {"name": "😀"}  # a pair
    assert c.post("/json", content=b'\xef\xbb\xbf{"name": "a"}', headers=JSON).status_code == 200  # a BOM
    assert c.post("/optional").json() == {"given": False}  # no body where none is needed
    deep_enough = '{"name": "a", "tags": ' + nested(MAX_DEPTH - 2) + "}"
    assert c.post("/json", content=deep_enough, headers=JSON).status_code == 200


def test_loads_applies_every_rule_and_reports_every_error():
    with pytest.raises(BadJson) as caught:
        loads('{"a": "\\u0000", "b": ["\\ud800"]}')
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [
        (("a",), "string_nul"),
        (("b", 0), "string_surrogate"),
    ]
    for text in ("", "[1] 2", "[1,]", b"\xff\xfe[]", "-Infinity"):
        with pytest.raises(BadJson):
            loads(text)
    assert loads(b' [1, 2.5, {"x": null}] ') == [1, 2.5, {"x": None}]


def test_array_items_reads_one_item_at_a_time_and_names_the_bad_one():
    assert list(array_items('[{"a": 1}, 2]', under="cities")) == [((0,), {"a": 1}), ((1,), 2)]
    assert list(array_items('{"skip": [1, 2], "cities": ["x"]}', under="cities")) == [(("cities", 0), "x")]
    items = array_items('[{"a": 1}, {"b": 1, "b": 2}]', under="cities")
    assert next(items) == ((0,), {"a": 1})  # the good first item comes before the second is even parsed
    with pytest.raises(BadJson) as caught:
        next(items)
    assert caught.value.errors[0]["loc"] == (1, "b")
    too_wide = "{" + ",".join(f'"k{i}": 1' for i in range(MAX_KEYS + 1)) + "}"
    for text in ('{"cities": [1], "cities": [2]}', "[1, 2", "[1] [2]", "[" + nested(MAX_DEPTH + 1) + "]", too_wide):
        with pytest.raises(BadJson):
            list(array_items(text, under="cities"))
    for text in ('{"other": []}', '"cities"', "3"):
        with pytest.raises(ValueError, match="not an array"):
            list(array_items(text, under="cities"))


def test_the_depth_check_skips_its_walk_for_shallow_bodies(monkeypatch):
    walked = []
    monkeypatch.setattr(strict_json, "problems", lambda value, at: walked.append(value) or [])
    loads('{"name": "a", "themes": {"ai": {"offer": 5}}}')
    assert walked == []
    loads(nested(MAX_DEPTH + 1).replace("[", '{"k":').replace("]", "}"))
    assert len(walked) == 1
