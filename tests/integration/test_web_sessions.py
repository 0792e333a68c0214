"""web's sessions live in a NATS key-value bucket its replicas share; a session's tokens are refreshed once
across all of them. The gateway is a fake (what it answers is not the subject here); NATS is real."""

import asyncio

import httpx
import pytest

from citypair_shared.idempotency import HEADER
from citypair_web.api import Api
from citypair_web.sessions import SessionStore, SignedOut


async def open_store(bus, lifetime_seconds: float = 3600) -> SessionStore:
    store = SessionStore(lifetime_seconds=lifetime_seconds)
    await store.open(bus)
    return store


def fake_gateway(refreshes: list) -> httpx.MockTransport:
    """Refuses the old access token; a refresh takes a while, so other requests arrive meanwhile."""

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/refresh":
            refreshes.append(request)
            await asyncio.sleep(0.05)
            n = len(refreshes)
            return httpx.Response(200, json={"access_token": f"new{n}", "refresh_token": f"r{n + 1}"})
        if request.url.path == "/api/v1/me":
            return httpx.Response(200, json={"id": "u1", "roles": ["official"]})
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401)
        return httpx.Response(200)

    return httpx.MockTransport(answer)


def replica(store: SessionStore, transport: httpx.MockTransport) -> Api:
    api = Api("http://gateway", store)
    api.client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
    return api


async def test_a_session_made_by_one_replica_is_served_and_ended_by_another(bus):
    first, second = await open_store(bus), await open_store(bus)
    session_id = await first.create(access_token="a", refresh_token="r", user={"roles": ["official"]})
    seen = await second.get(session_id)
    assert (seen.access_token, seen.roles) == ("a", {"official"})
    assert await second.get("a forged id") is None and await second.get(None) is None
    await second.drop(session_id)
    assert await first.get(session_id) is None


async def test_a_session_past_its_lifetime_is_not_served(bus):
    store = await open_store(bus, lifetime_seconds=-1)
    assert await store.get(await store.create(access_token="a", refresh_token="r", user={})) is None


async def test_requests_of_one_session_on_two_replicas_refresh_its_tokens_once(bus):
    """20 requests of one session, 10 at each of two replicas, all finding the access token expired: one
    refresh (a second use of the refresh token would be taken by identity for theft and sign the user out
    everywhere); each request is answered, and the bucket holds the new tokens."""
    for trial in range(5):
        refreshes = []
        transport = fake_gateway(refreshes)
        stores = [await open_store(bus), await open_store(bus)]
        session_id = await stores[0].create(access_token="old", refresh_token="r1", user={})
        apis = [replica(store, transport) for store in stores]
        try:
            calls = []
            for api, store in zip(apis, stores, strict=True):
                for _ in range(10):  # each request reads the session for itself, as a page does
                    calls.append(api.call(await store.get(session_id), "GET", "/api/v1/cities"))
            responses = await asyncio.gather(*calls)
        finally:
            for api in apis:
                await api.close()
        assert len(refreshes) == 1, f"trial {trial}: {len(refreshes)} refreshes"
        assert [r.status_code for r in responses] == [200] * 20
        stored = await stores[1].get(session_id)
        assert (stored.access_token, stored.refresh_token, stored.refreshing_until) == ("new1", "r2", 0)


async def test_a_refused_refresh_ends_the_session(bus):
    store = await open_store(bus)
    session_id = await store.create(access_token="old", refresh_token="spent", user={})

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401)

    api = replica(store, httpx.MockTransport(refuse))
    try:
        with pytest.raises(SignedOut):
            await api.call(await store.get(session_id), "GET", "/api/v1/cities")
    finally:
        await api.close()
    assert await store.get(session_id) is None


async def test_the_web_sends_one_key_per_post_the_same_after_refreshing_the_token(bus):
    seen = []
    answers = [
        httpx.Response(401),
        httpx.Response(200, json={"access_token": "new", "refresh_token": "r2"}),
        httpx.Response(200, json={"id": "u1", "roles": []}),
        httpx.Response(201),
        httpx.Response(200),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    store = await open_store(bus)
    session = await store.get(await store.create(access_token="old", refresh_token="r1", user={}))
    api = replica(store, httpx.MockTransport(answer))
    try:
        await api.call(session, "POST", "/api/v1/rounds", json={}, headers={"If-Match": '"1"'})
        await api.call(session, "GET", "/api/v1/rounds/x")
    finally:
        await api.close()
    first, _, _, retried, read = seen
    assert first.headers[HEADER] == retried.headers[HEADER]
    assert retried.headers["authorization"] == "Bearer new" and retried.headers["if-match"] == '"1"'
    assert HEADER not in read.headers
