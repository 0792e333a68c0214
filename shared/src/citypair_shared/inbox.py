"""Idempotent consumer: a handler's effects and its `(consumer, event id)` row commit together."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from citypair_shared.db import UtcDateTime
from citypair_shared.events import CloudEvent
from citypair_shared.tracing import event_span

EventHandler = Callable[[CloudEvent, AsyncSession], Awaitable[None]]
ManyHandler = Callable[[list[CloudEvent], AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class BatchHandler:
    """A handler that takes a run of consecutive events of a fetched batch in one call (one query for all their
    rows, not one each); it must leave what handling them one at a time, in order, would. Called with one event
    it is an ordinary `EventHandler`."""

    handle_many: ManyHandler

    async def __call__(self, event: CloudEvent, session: AsyncSession) -> None:
        await self.handle_many([event], session)


class InboxMixin:
    """Columns of a service's `inbox` table: one row per event a consumer has handled."""

    consumer: Mapped[str] = mapped_column(String(120), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(120))
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


async def handle_once(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    inbox_model: type,
    consumer: str,
    event: CloudEvent,
    handler: EventHandler,
) -> bool:
    """Run `handler` unless this consumer already handled `event`; True if it ran.

    Two racing deliveries both try to insert the inbox row; the loser's transaction fails
    and its message is redelivered, to find the row and do nothing.
    """
    items = [(event, handler)]
    return (
        await handle_all_once(session_factory=session_factory, inbox_model=inbox_model, consumer=consumer, items=items)
    )[0]


async def handle_all_once(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    inbox_model: type,
    consumer: str,
    items: list[tuple[CloudEvent, EventHandler]],
) -> list[bool]:
    """`handle_once` for a batch in one transaction (far fewer commits): all or nothing, in order; consecutive
    events of one `BatchHandler` go to it in one call."""
    ids = [event.id for event, _ in items]
    ran = []
    runs: list[tuple[EventHandler, list[CloudEvent]]] = []
    async with session_factory() as session, session.begin():
        done = set(
            await session.scalars(
                select(inbox_model.event_id).where(inbox_model.consumer == consumer, inbox_model.event_id.in_(ids))
            )
        )
        for event, handler in items:
            if event.id in done:
                ran.append(False)
                continue
            done.add(event.id)
            session.add(inbox_model(consumer=consumer, event_id=event.id, type=event.type))
            if runs and isinstance(handler, BatchHandler) and runs[-1][0] is handler:
                runs[-1][1].append(event)
            else:
                runs.append((handler, [event]))
            ran.append(True)
        for handler, events in runs:
            group = {"messaging.consumer.group.name": consumer, "messaging.batch.message_count": str(len(events))}
            with event_span(events[0], "process", SpanKind.CONSUMER, **group):
                if isinstance(handler, BatchHandler):
                    await handler.handle_many(events, session)
                else:
                    await handler(events[0], session)
    return ran


async def keep_newest(session: AsyncSession, model: type, snapshots: list[dict[str, Any]]) -> list[bool]:
    """`citypair_shared.db.keep_newer` for a run of snapshots (each a row's values with `id` and `version`) in
    order, with one SELECT for the rows held: whether each was applied, as one at a time would say. A row held
    is written `WHERE version = :read` (the model's `version_id_col`) once, with the newest of the run."""
    ids = sorted({snapshot["id"] for snapshot in snapshots})
    held = {row.id: row for row in await session.scalars(select(model).where(model.id.in_(ids)))}
    applied = []
    for snapshot in snapshots:
        row = held.get(snapshot["id"])
        if row is not None and row.version >= snapshot["version"]:
            applied.append(False)
            continue
        if row is None:
            session.add(held.setdefault(snapshot["id"], model(**snapshot)))
        else:
            for key, value in snapshot.items():
                setattr(row, key, value)
        applied.append(True)
    return applied
