"""The records of Idempotency-Keys, on the real database: an expired record is deleted only while it is expired."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import delete, event, insert, select

from citypair_profiles.models import IdempotencyRecord
from citypair_shared.db import create_engine, sync_url
from citypair_shared.idempotency import KEPT_FOR, Records
from citypair_shared.migrations import upgrade
from citypair_shared.services import SERVICE_BY_NAME
from tests.support import fresh_database_url

RECORDS = IdempotencyRecord.__table__
RECORD = {"scope": "user-1", "key": "key-1", "headers": {}}


async def test_an_expired_record_found_is_deleted_only_if_nobody_claimed_its_key_meanwhile(tmp_path):
    """Between a lookup that finds the record expired and its delete, another request deletes it too and claims
    the key afresh: that new claim must survive (the delete says "still expired", not just the key)."""
    url = fresh_database_url("profiles", tmp_path)
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    engine = create_engine(url)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    other = sa.create_engine(sync_url(url))
    now = datetime.now(UTC)
    with other.begin() as connection:
        connection.execute(insert(RECORDS).values(**RECORD, fingerprint="old", created_at=now - KEPT_FOR * 2))

    def claim_afresh_first(_connection, _cursor, statement, *_):
        if statement.lstrip().upper().startswith("DELETE"):
            with other.begin() as connection:
                connection.execute(delete(RECORDS))
                connection.execute(insert(RECORDS).values(**RECORD, fingerprint="new", created_at=now))

    event.listen(autocommit.sync_engine, "before_cursor_execute", claim_afresh_first)
    try:
        assert await Records(autocommit, IdempotencyRecord).find("user-1", "key-1") is None
    finally:
        event.remove(autocommit.sync_engine, "before_cursor_execute", claim_afresh_first)
        await engine.dispose()
    with other.connect() as connection:
        assert connection.execute(select(RECORDS.c.fingerprint)).all() == [("new",)]
    other.dispose()


async def test_an_expired_record_is_deleted_and_a_live_one_found(tmp_path):
    url = fresh_database_url("profiles", tmp_path)
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    engine = create_engine(url)
    records = Records(engine.execution_options(isolation_level="AUTOCOMMIT"), IdempotencyRecord)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(RECORDS).values(**RECORD, fingerprint="old", created_at=now - KEPT_FOR * 2))
            live = {**RECORD, "key": "key-2", "fingerprint": "live", "created_at": now - timedelta(hours=1)}
            await connection.execute(insert(RECORDS).values(**live))
        assert await records.find("user-1", "key-1") is None
        assert (await records.find("user-1", "key-2")).fingerprint == "live"
        async with engine.connect() as connection:
            assert (await connection.execute(select(RECORDS.c.key))).all() == [("key-2",)]
    finally:
        await engine.dispose()
