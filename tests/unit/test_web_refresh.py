"""web refreshes a session's tokens once, however many of its requests found the access token expired."""

import asyncio

import httpx

from citypair_web.api import Api
from citypair_web.sessions import Session


async def test_concurrent_requests_of_one_session_refresh_once():
    refreshes = []

    async def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/refresh":
            refreshes.append(request)
            await asyncio.sleep(0.05)  # the others arrive while this refresh is out
            n = len(refreshes)
            return httpx.Response(200, json={"access_token": f"new{n}", "refresh_token": f"r{n + 1}"})
        if request.url.path == "/api/v1/me":
            return httpx.Response(200, json={"id": "u1", "roles": []})
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401)
        return httpx.Response(200)

    api = Api("http://gateway")
    api.client = httpx.AsyncClient(transport=httpx.MockTransport(gateway), base_url="http://gateway")
    session = Session(access_token="old", refresh_token="r1", user={}, expires_at=0)
    try:
        responses = await asyncio.gather(*(api.call(session, "GET", "/api/v1/cities") for _ in range(10)))
    finally:
        await api.close()
    # A second use of r1 would be taken by identity for a stolen token and sign the user out everywhere.
    assert len(refreshes) == 1
    assert [r.status_code for r in responses] == [200] * 10
    assert (session.access_token, session.refresh_token) == ("new1", "r2")
