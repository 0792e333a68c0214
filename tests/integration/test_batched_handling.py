"""Events handled in batches keep the inbox's guarantees: an inbox row per event, a redelivered batch a no-op,
runs of a `BatchHandler` in order around other handlers, and snapshots kept by version (`keep_newest`)."""

from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from citypair_shared.db import new_metadata
from citypair_shared.events import CityRegistered, CitySnapshot, CityUpdated, CloudEvent, new_event
from citypair_shared.inbox import BatchHandler, handle_all_once, keep_newest
from tests.integration.conftest import Inbox


class Base(DeclarativeBase):
    metadata = new_metadata()


class Known(Base):
    __tablename__ = "known"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}
    name: Mapped[str] = mapped_column(String(200))


def snapshot_event(city_id: str, version: int, name: str, kind=CityUpdated) -> CloudEvent:
    city = CitySnapshot(
        id=city_id, version=version, name=name, country_code="CN", latitude=34.3, longitude=108.9, population=1
    )
    return new_event(kind(city=city), source="/test", subject=city_id)


async def create_tables(session_factory) -> None:
    async with session_factory() as session:
        await (await session.connection()).run_sync(Base.metadata.create_all)
        await session.commit()


async def test_a_batch_keeps_an_inbox_row_per_event_the_newest_snapshot_and_is_a_no_op_redelivered(session_factory):
    await create_tables(session_factory)
    calls: list[list[str]] = []

    async def on_snapshots(events: list[CloudEvent], session) -> None:
        calls.append([e.id for e in events])
        cities = [e.parsed().city for e in events]
        await keep_newest(session, Known, [{"id": c.id, "version": c.version, "name": c.name} for c in cities])

    async def on_other(event: CloudEvent, session) -> None:
        calls.append(["other " + event.id])

    snapshots = BatchHandler(on_snapshots)
    first = snapshot_event("a", 2, "a2", CityRegistered)
    events = [first, snapshot_event("a", 1, "a1"), snapshot_event("b", 1, "b1"), first]
    other = snapshot_event("c", 1, "c1")
    events += [other, snapshot_event("a", 3, "a3"), snapshot_event("b", 3, "b3"), snapshot_event("b", 2, "b2")]
    items = [(e, on_other if e is other else snapshots) for e in events]
    args = {"session_factory": session_factory, "inbox_model": Inbox, "consumer": "test"}

    ran = await handle_all_once(items=items, **args)

    assert ran == [True, True, True, False, True, True, True, True]  # the repeated event once
    ids = [e.id for e in events]
    assert calls == [ids[:3], ["other " + other.id], ids[5:]]  # in order, runs split by the other handler
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Inbox)) == 7
        known = {k.id: (k.version, k.name) for k in await session.scalars(select(Known))}
    assert known == {"a": (3, "a3"), "b": (3, "b3")}

    calls.clear()
    assert await handle_all_once(items=items, **args) == [False] * len(items)
    assert calls == []


async def test_keep_newest_says_what_one_at_a_time_would(session_factory):
    await create_tables(session_factory)
    async with session_factory() as session, session.begin():
        session.add(Known(id="held", version=5, name="held5"))
    rows = [
        {"id": "held", "version": 4, "name": "older"},
        {"id": "held", "version": 6, "name": "held6"},
        {"id": "held", "version": 6, "name": "same"},
        {"id": "new", "version": 2, "name": "new2"},
        {"id": "new", "version": 1, "name": "older"},
        {"id": "new", "version": 7, "name": "new7"},
    ]
    async with session_factory() as session, session.begin():
        assert await keep_newest(session, Known, rows) == [False, True, False, True, False, True]
    async with session_factory() as session:
        known = {k.id: (k.version, k.name) for k in await session.scalars(select(Known))}
    assert known == {"held": (6, "held6"), "new": (7, "new7")}
