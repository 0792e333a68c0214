"""A method a path does not take is answered 405, with an `Allow` naming every method the path takes.

Starlette names the methods of the first route that matches the path alone; a path served by two route
functions (GET and POST, as most collections here are) would say `Allow: GET` to a client that may POST.
"""

from fastapi import APIRouter
from fastapi.testclient import TestClient

from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime
from tests.unit.test_app_errors import NoDatabase


def test_a_405_names_every_method_of_the_path():
    router = APIRouter()

    @router.get("/things")
    async def list_things():
        return []

    @router.post("/things")
    async def add_thing():
        return {}

    app = build_app(title="t", runtime=Runtime(NoDatabase()), routers=[router])
    response = TestClient(app).delete("/things")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_a_literal_path_names_its_own_methods_not_those_of_a_templated_path_it_also_matches():
    """`/things/export` is that path (as OpenAPI reads a URL), not `/things/{thing_id}` with the id `export`."""
    router = APIRouter()

    @router.get("/things/export")
    async def export_things():
        return []

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str):
        return {}

    @router.patch("/things/{thing_id}")
    async def edit_thing(thing_id: str):
        return {}

    app = build_app(title="t", runtime=Runtime(NoDatabase()), routers=[router])
    response = TestClient(app).put("/things/export")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert set(TestClient(app).put("/things/1").headers["Allow"].split(", ")) == {"GET", "PATCH"}
