"""Retention (issue 15): streams keep events for a limited age; sent outbox rows and old inbox rows are pruned,
and an inbox row outlives every redelivery of its event, so a redelivery after pruning is still applied once."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from citypair_shared.bus import DEAD_LETTER_MAX_AGE, STREAM_MAX_AGE, Subscription
from citypair_shared.inbox import handle_once
from citypair_shared.metrics import ROWS_PRUNED
from citypair_shared.outbox import OutboxRelay
from citypair_shared.retention import Retention, prune_once
from tests.integration.conftest import Inbox, Outbox
from tests.integration.test_outbox_inbox_bus import city_event

RETENTION = Retention(outbox_kept=timedelta(days=7), stream_max_age=STREAM_MAX_AGE)


async def count(session_factory, model, *where) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_streams_keep_events_for_a_limited_age_and_dead_letters_longer(bus):
    assert (await bus.js.stream_info("PROFILES")).config.max_age == STREAM_MAX_AGE.total_seconds()
    assert (await bus.js.stream_info("DEADLETTER")).config.max_age == DEAD_LETTER_MAX_AGE.total_seconds()
    assert RETENTION.inbox_kept > STREAM_MAX_AGE  # an inbox row outlives the event in the stream


async def test_prune_deletes_sent_outbox_rows_and_expired_inbox_rows_only(session_factory, bus):
    relay = OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60)
    async with session_factory() as session:
        for _ in range(3):
            relay.add(session, city_event())
        await session.commit()
    await relay.publish_pending()
    async with session_factory() as session:
        relay.add(session, city_event())  # never sent (say NATS is down): kept however old
        session.add(Inbox(consumer="matching", event_id="e-old", type="t"))
        await session.commit()
    before = ROWS_PRUNED.labels("outbox")._value.get()

    # A week and a day on: the sent outbox rows go; the inbox row stays (its event may still be redelivered).
    a_week_on = await prune_once(
        session_factory, RETENTION, outbox_model=Outbox, inbox_model=Inbox, now=datetime.now(UTC) + timedelta(days=8)
    )
    assert a_week_on == {"outbox": 3, "inbox": 0}
    assert await count(session_factory, Outbox) == 1 and await count(session_factory, Inbox) == 1
    assert ROWS_PRUNED.labels("outbox")._value.get() == before + 3
    # Past the stream's age and the margin: the inbox row goes too; the unsent outbox row still stays.
    later = datetime.now(UTC) + RETENTION.inbox_kept + timedelta(hours=1)
    assert await prune_once(session_factory, RETENTION, outbox_model=Outbox, inbox_model=Inbox, now=later) == {
        "outbox": 0,
        "inbox": 1,
    }
    assert await count(session_factory, Outbox, Outbox.published_at.is_(None)) == 1


async def test_a_redelivery_after_pruning_is_applied_once(session_factory, bus):
    relay = OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60)
    event = city_event()
    async with session_factory() as session:
        relay.add(session, event)
        await session.commit()
    await relay.publish_pending()
    applied = []

    async def handler(evt, session):
        applied.append(evt.id)

    async def deliver_all() -> None:
        """A fresh durable consumer from the stream's start: every event there is delivered (again)."""
        stop = asyncio.Event()
        subscription = Subscription(consumer="retention-test", stream="PROFILES")

        async def handle(evt, delivered):
            await handle_once(
                session_factory=session_factory, inbox_model=Inbox, consumer="c", event=evt, handler=handler
            )
            stop.set()

        await asyncio.wait_for(bus.consume(subscription, handle, stop), timeout=10)
        await bus.js.delete_consumer("PROFILES", subscription.durable)

    await deliver_all()
    assert applied == [event.id]
    # The outbox row is pruned as the sender's retention allows; the inbox row is kept.
    now = datetime.now(UTC) + timedelta(days=8)
    assert await prune_once(session_factory, RETENTION, outbox_model=Outbox, inbox_model=Inbox, now=now) == {
        "outbox": 1,
        "inbox": 0,
    }
    await deliver_all()  # the event delivered again, as after a consumer reset or a replay
    assert applied == [event.id]


async def test_an_expired_inbox_row_takes_no_other_consumers_row_of_the_same_event(session_factory):
    """Rows are named by their whole key (consumer, event id): one consumer's expired row goes alone."""
    long_ago = datetime.now(UTC) - RETENTION.inbox_kept - timedelta(days=1)
    async with session_factory() as session:
        session.add(Inbox(consumer="matching", event_id="e-1", type="t", handled_at=long_ago))
        session.add(Inbox(consumer="identity", event_id="e-1", type="t"))
        await session.commit()
    assert await prune_once(session_factory, RETENTION, inbox_model=Inbox) == {"inbox": 1}
    assert await count(session_factory, Inbox, Inbox.consumer == "identity") == 1
