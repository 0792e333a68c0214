"""The shared event machinery against a real nats-server and a real database."""

import asyncio

import pytest
from sqlalchemy import func, select

from citypair_shared.bus import Subscription
from citypair_shared.events import CityRegistered, CitySnapshot, CloudEvent, new_event
from citypair_shared.inbox import handle_once
from citypair_shared.metrics import OUTBOX_BACKLOG
from citypair_shared.outbox import OutboxRelay
from tests.integration.conftest import Inbox, Outbox


def city_event() -> CloudEvent:
    city = CitySnapshot(
        id="c1", version=1, name="Xi'an", country_code="CN", latitude=34.3, longitude=108.9, population=1
    )
    return new_event(CityRegistered(city=city), source="/test", subject="c1")


async def stream_messages(bus, stream="PROFILES") -> int:
    return (await bus.js.stream_info(stream)).state.messages


async def test_committed_event_is_published_with_its_id_as_msg_id(session_factory, bus):
    relay = OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60)
    event = city_event()
    async with session_factory() as session:
        relay.add(session, event)
        await session.commit()
    assert await relay.publish_pending() == 1
    message = await bus.js.get_msg("PROFILES", seq=1)
    assert message.headers["Nats-Msg-Id"] == event.id
    assert CloudEvent.model_validate_json(message.data) == event
    async with session_factory() as session:
        assert (await session.scalar(select(Outbox.published_at))) is not None


class PausingBus:
    """The real bus, held before its `pause_at`-th publish until `go` is set (to look at the relay mid-drain)."""

    def __init__(self, bus, pause_at: int):
        self.bus, self.pause_at, self.published = bus, pause_at, 0
        self.paused, self.go = asyncio.Event(), asyncio.Event()

    async def publish_stored(self, event_type: str, event_id: str, payload: str) -> None:
        self.published += 1
        if self.published == self.pause_at:
            self.paused.set()
            await self.go.wait()
        await self.bus.publish_stored(event_type, event_id, payload)


async def test_the_backlog_gauge_counts_down_while_a_backlog_drains(session_factory, bus):
    """An import stages tens of thousands of events: the gauge said 0 (the last pass's count) until all were out."""
    paused = PausingBus(bus, pause_at=150)
    relay = OutboxRelay(session_factory, Outbox, paused, sweep_seconds=60)
    OUTBOX_BACKLOG.set(0)
    async with session_factory() as session:
        await relay.add_many(session, [city_event() for _ in range(250)])
        await session.commit()
    draining = asyncio.create_task(relay.publish_pending(batch=100))
    await asyncio.wait_for(paused.paused.wait(), timeout=30)
    assert OUTBOX_BACKLOG._value.get() == 150  # the first batch of 100 is out
    paused.go.set()
    assert await draining == 250
    assert OUTBOX_BACKLOG._value.get() == 0 and await stream_messages(bus) == 250


async def test_rolled_back_event_is_never_published(session_factory, bus):
    relay = OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60)
    async with session_factory() as session:
        relay.add(session, city_event())
        await session.rollback()
    assert await relay.publish_pending() == 0
    assert await stream_messages(bus) == 0


async def test_events_wait_while_nats_is_down_and_go_out_once_it_returns(session_factory, bus, own_nats):
    relay = OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60)
    own_nats.stop()
    async with session_factory() as session:
        relay.add(session, city_event())
        relay.add(session, city_event())
        await session.commit()
    assert await relay.publish_pending() == 0
    async with session_factory() as session:
        assert await session.scalar(select(func.max(Outbox.attempts))) == 1
    own_nats.start()
    for _ in range(100):
        if bus.connected:
            break
        await asyncio.sleep(0.05)
    assert await relay.publish_pending() == 2
    assert await stream_messages(bus) == 2


async def test_jetstream_drops_a_republish_of_the_same_event(bus):
    event = city_event()
    await bus.publish(event)
    await bus.publish(event)
    assert await stream_messages(bus) == 1


async def test_inbox_runs_a_handler_once_per_event(session_factory):
    calls = []

    async def handler(event, session):
        calls.append(event.id)

    event = city_event()
    args = {"session_factory": session_factory, "inbox_model": Inbox, "consumer": "test", "event": event}
    assert await handle_once(handler=handler, **args) is True
    assert await handle_once(handler=handler, **args) is False
    assert calls == [event.id]


async def test_failed_handler_rolls_back_its_inbox_row(session_factory):
    async def broken(event, session):
        raise RuntimeError("boom")

    event = city_event()
    args = {"session_factory": session_factory, "inbox_model": Inbox, "consumer": "test", "event": event}
    with pytest.raises(RuntimeError):
        await handle_once(handler=broken, **args)
    calls = []

    async def works(event, session):
        calls.append(1)

    assert await handle_once(handler=works, **args) is True
    assert calls == [1]


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_max_deliver(bus):
    attempts = []

    async def always_fails(event, delivered):
        attempts.append(delivered)
        raise ValueError("cannot handle")

    stop = asyncio.Event()
    consumer = asyncio.create_task(bus.consume(Subscription("test", "PROFILES"), always_fails, stop))
    await bus.publish(city_event())
    for _ in range(200):
        if (await bus.js.stream_info("DEADLETTER")).state.messages:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await consumer
    assert attempts == [1, 2]
    dead = await bus.js.get_msg("DEADLETTER", seq=1)
    assert dead.subject == "deadletter.test--profiles"
    assert "cannot handle" in dead.headers["Citypair-Error"]
    assert dead.headers["Citypair-Subject"] == "profiles.city.registered.v1"
