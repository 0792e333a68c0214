"""Idempotent consumer: a handler's effects and its `(consumer, event id)` row commit together."""

from collections.abc import Awaitable, Callable
from datetime import datetime

from opentelemetry.trace import SpanKind
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from citypair_shared.db import UtcDateTime
from citypair_shared.events import CloudEvent
from citypair_shared.tracing import event_span

EventHandler = Callable[[CloudEvent, AsyncSession], Awaitable[None]]


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
    """`handle_once` for a batch in one transaction (far fewer commits): all or nothing."""
    ids = [event.id for event, _ in items]
    ran = []
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
            with event_span(event, "process", SpanKind.CONSUMER, **{"messaging.consumer.group.name": consumer}):
                await handler(event, session)
            ran.append(True)
    return ran
