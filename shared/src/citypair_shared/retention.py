"""Retention: what a service keeps of its outbox, inbox and Idempotency-Key records, pruned hourly.

- An outbox row is needed until JetStream acknowledged it; a sent one is kept a while to look into.
- An inbox row must outlive every possible redelivery of its event, or a redelivery would be applied a
  second time: JetStream keeps an event `stream_max_age` at most (declare_streams gives the streams that
  limit), so the row is kept that long and a day more (beyond the ack wait and any replay's delay).
- An Idempotency-Key record lives its 24 h window (citypair_shared.idempotency).

Every replica may prune: deleting the same rows twice is harmless. Deletes go in batches, so no table is
locked for long.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, inspect, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from citypair_shared.idempotency import KEPT_FOR as IDEMPOTENCY_KEPT_FOR
from citypair_shared.logging import get_logger
from citypair_shared.metrics import ROWS_PRUNED

log = get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
BATCH = 5_000
INBOX_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Retention:
    outbox_kept: timedelta
    stream_max_age: timedelta

    @property
    def inbox_kept(self) -> timedelta:
        return self.stream_max_age + INBOX_MARGIN


async def prune_once(
    session_factory: async_sessionmaker[AsyncSession],
    retention: Retention,
    *,
    outbox_model: type | None = None,
    inbox_model: type | None = None,
    idempotency_model: type | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete what is past its time; returns how many rows of each table."""
    now = now or datetime.now(UTC)
    expired = {}
    if outbox_model is not None:  # sent rows only: an unsent one is never pruned, however old
        expired[outbox_model] = outbox_model.published_at < now - retention.outbox_kept
    if inbox_model is not None:
        expired[inbox_model] = inbox_model.handled_at < now - retention.inbox_kept
    if idempotency_model is not None:
        expired[idempotency_model] = idempotency_model.created_at < now - IDEMPOTENCY_KEPT_FOR
    pruned = {}
    for model, condition in expired.items():
        pruned[model.__tablename__] = await _delete_in_batches(session_factory, model, condition)
        ROWS_PRUNED.labels(model.__tablename__).inc(pruned[model.__tablename__])
    return pruned


async def _delete_in_batches(session_factory, model: type, condition) -> int:
    """Rows matching `condition`, a batch at a time, each row named by its whole primary key."""
    key = tuple_(*inspect(model).primary_key)
    total = 0
    while True:
        async with session_factory() as session:
            batch = select(*inspect(model).primary_key).where(condition).limit(BATCH)
            deleted = (await session.execute(delete(model).where(key.in_(batch)))).rowcount
            await session.commit()
        total += deleted
        if deleted < BATCH:
            return total


async def prune_periodically(session_factory, retention: Retention, stop: asyncio.Event, **models) -> None:
    while not stop.is_set():
        try:
            pruned = await prune_once(session_factory, retention, **models)
            if any(pruned.values()):
                log.info("retention.pruned", **pruned)
        except Exception as exc:  # the database is away: the next round deletes them
            log.warning("retention.prune_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=PRUNE_EVERY_SECONDS)
