"""A pooled PostgreSQL connection that died while idle is found by its ping and replaced before a request meets it;
one back in use within IDLE_BEFORE_PING is not pinged (its request meets the death, and the pool is replaced)."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from citypair_shared import db
from tests.support import POSTGRES_ADMIN_URL, fresh_database_url

pytestmark = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="a server-side disconnect needs PostgreSQL (CI sets it)")
IDLE = 0.3  # seconds, for the test (IDLE_BEFORE_PING)


@pytest.fixture
async def engines(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "IDLE_BEFORE_PING", IDLE)
    url = fresh_database_url("shared", tmp_path)
    service, admin = db.create_engine(url), db.create_engine(url)
    yield service, admin
    for engine in (service, admin):
        await engine.dispose()


async def backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT pg_backend_pid()"))


async def terminate(admin, pid: int) -> None:
    async with admin.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_a_connection_that_died_idle_is_replaced_before_use(engines):
    service, admin = engines
    pid = await backend_pid(service)
    await terminate(admin, pid)
    await asyncio.sleep(IDLE * 1.5)
    assert await backend_pid(service) != pid  # answered, by a new connection


async def test_a_connection_back_in_use_at_once_is_not_pinged(engines):
    service, admin = engines
    pid = await backend_pid(service)
    await terminate(admin, pid)
    with pytest.raises(DBAPIError) as raised:
        await backend_pid(service)
    assert raised.value.connection_invalidated
    assert await backend_pid(service) != pid  # the pool was replaced: the next request is served
