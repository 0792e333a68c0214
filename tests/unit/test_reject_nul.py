"""`reject_nul` and `reject_bad_json`: U+0000 in any input is a 422 naming where (PostgreSQL cannot store it)."""

from typing import Annotated

from fastapi import Depends, FastAPI, Form, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from citypair_shared.deps import reject_nul
from citypair_shared.problems import install_problem_handlers
from citypair_shared.strict_json import reject_bad_json


class Body(BaseModel):
    name: str
    tags: list[str] = []


def client() -> TestClient:
    app = FastAPI(dependencies=[Depends(reject_nul), Depends(reject_bad_json)])  # as build_app
    install_problem_handlers(app)

    @app.post("/json/{item}")
    async def json_route(item: str, body: Body, q: str = "") -> dict:
        return {"ok": True}

    @app.post("/form")
    async def form_route(username: Annotated[str, Form()]) -> dict:
        return {"ok": True}

    @app.post("/raw")
    async def raw(request: Request) -> dict:
        return {"read": len([chunk async for chunk in request.stream()])}

    @app.get("/plain")
    async def plain(q: str = "") -> dict:
        return {"ok": True}

    return TestClient(app)


def fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


def test_nul_is_refused_wherever_it_is():
    c = client()
    assert fields(c.post("/json/a%00b", json={"name": "x"})) == ["path.item"]
    assert fields(c.post("/json/a", params={"q": "a\x00"}, json={"name": "x"})) == ["query.q"]
    assert fields(c.post("/json/a", json={"name": "x\x00", "tags": ["ok", "\x00"]})) == ["name", "tags.1"]
    assert fields(c.post("/form", data={"username": "a\x00b"})) == ["username"]
    assert fields(c.get("/plain", params={"q": "\x00"})) == ["query.q"]
    # Routes that stream the body themselves (imports) read it whole, and check it with strict_json themselves.
    raw = c.post("/raw", content=b'[{"name": "a\\u0000"}]', headers={"content-type": "application/json"})
    assert raw.status_code == 200 and raw.json()["read"] >= 1


def test_text_without_nul_passes():
    c = client()
    assert c.post("/json/a", json={"name": "a\\u0000 is only text here", "tags": ["x"]}).status_code == 200
    assert c.post("/form", data={"username": "someone@example.org"}).status_code == 200
