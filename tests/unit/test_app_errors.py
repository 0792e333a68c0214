"""An unexpected error is answered as a 500 problem and never reaches the server.

Re-raised, uvicorn drops the keep-alive connection after the 500, and the gateway's next request
already on its way over that connection fails as well (a 503 for a request that did nothing wrong).
"""

from fastapi import APIRouter
from fastapi.testclient import TestClient

from citypair_shared.app import build_app
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings


class NoDatabase(ServiceSettings):
    has_database = False


def test_an_unexpected_error_is_a_500_problem_that_the_server_never_sees():
    router = APIRouter()

    @router.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    app = build_app(title="t", runtime=Runtime(NoDatabase()), routers=[router])
    # raise_server_exceptions=True (the default) re-raises whatever reaches the server.
    response = TestClient(app).get("/boom", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "r-1"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "detail": "the error was logged",
        "instance": "/boom",
    }
