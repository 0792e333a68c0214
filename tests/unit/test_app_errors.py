"""An unexpected error is answered as a 500 problem and never reaches the server.

Re-raised, uvicorn drops the keep-alive connection after the 500, and the gateway's next request
already on its way over that connection fails as well (a 503 for a request that did nothing wrong).
"""

import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from citypair_shared.app import build_app
from citypair_shared.metrics import REQUESTS
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


async def test_web_passes_the_pages_request_id_to_the_api():
    import httpx

    from citypair_shared.logging import request_id_var
    from citypair_web.api import _pass_request_id

    token = request_id_var.set("page-123")
    try:
        request = httpx.Request("GET", "http://gateway/api/v1/cities")
        await _pass_request_id(request)
        assert request.headers["X-Request-ID"] == "page-123"
    finally:
        request_id_var.reset(token)
    untouched = httpx.Request("GET", "http://gateway/api/v1/cities")
    await _pass_request_id(untouched)  # outside a page's request: no id made up
    assert "X-Request-ID" not in untouched.headers


def test_an_answer_cut_short_by_an_error_is_counted_as_a_500_not_as_the_status_sent():
    router = APIRouter()

    @router.get("/cut")
    async def cut():
        async def rows():
            yield b"first row\n"
            raise RuntimeError("a bug in the middle of an export")

        return StreamingResponse(rows(), media_type="text/csv")

    app = build_app(title="t", runtime=Runtime(NoDatabase()), routers=[router])

    def counted(status: str) -> float:
        return REQUESTS.labels("GET", "/cut", status)._value.get()

    before_ok, before_failed = counted("200"), counted("500")
    with pytest.raises(RuntimeError):  # the answer had begun: the error can only cut the connection
        TestClient(app).get("/cut")
    assert counted("500") == before_failed + 1
    assert counted("200") == before_ok
