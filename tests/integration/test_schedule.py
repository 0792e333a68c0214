"""Periodic work runs once per period however many replicas ask (a real database, several engines)."""

import asyncio

from sqlalchemy.orm import DeclarativeBase

from citypair_shared.db import create_engine, create_session_factory, new_metadata
from citypair_shared.schedule import JobSlotMixin, take_slot
from tests.support import fresh_database_url


class Base(DeclarativeBase):
    metadata = new_metadata()


class JobSlot(JobSlotMixin, Base):
    __tablename__ = "job_slot"


async def test_one_replica_per_period_takes_the_slot(tmp_path):
    url = fresh_database_url("schedule", tmp_path)
    engines = [create_engine(url) for _ in range(4)]  # one per replica
    async with engines[0].begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    replicas = [create_session_factory(engine) for engine in engines]
    try:
        for period in range(3):  # three periods, every replica asking five times in each
            now = 1_800_000_000 + period * 60 + 30
            asks = [take_slot(r, JobSlot, "sweep", period_seconds=60, now=now) for r in replicas for _ in range(5)]
            assert sum(await asyncio.gather(*asks)) == 1
        other_job = await asyncio.gather(
            *(take_slot(r, JobSlot, "digest", period_seconds=60, now=now) for r in replicas)
        )
        assert sum(other_job) == 1
    finally:
        for engine in engines:
            await engine.dispose()
