"""Periodic work done once per period across replicas: time is cut into slots of one period, and the
replica that moves a job's row to the current slot does that slot's run (the database picks one)."""

import time

from sqlalchemy import BigInteger, String, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from citypair_shared.db import insert_if_absent


class JobSlotMixin:
    """Columns of a service's `job_slot` table: the last slot each periodic job was run for."""

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)


def current_slot(period_seconds: float, now: float | None = None) -> int:
    return int((time.time() if now is None else now) // period_seconds)


async def take_slot(
    session_factory: async_sessionmaker[AsyncSession],
    model: type,
    job: str,
    *,
    period_seconds: float,
    now: float | None = None,
) -> bool:
    """True for exactly one caller per job and slot, whichever replica asks first."""
    slot = current_slot(period_seconds, now)
    async with session_factory() as session:
        await insert_if_absent(session, model, job=job, slot=-1)
        taken = await session.execute(update(model).where(model.job == job, model.slot < slot).values(slot=slot))
        await session.commit()
    return taken.rowcount == 1
