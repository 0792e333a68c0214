"""Async engines and sessions, the naming convention, and side effects that run only after commit."""

import asyncio
import functools
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

IDLE_BEFORE_PING = 1.0  # seconds: a connection idle longer is pinged before use (ping_when_idle)
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A MetaData with stable constraint names, so Alembic diffs stay clean."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets its folder, WAL and a busy timeout so readers never block writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=10, max_overflow=10)
        ping_when_idle(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it has lain idle IDLE_BEFORE_PING: a server restart or a
    closed idle connection is found then, and replaced, before a request meets it.

    SQLAlchemy's `pool_pre_ping` checks every checkout, three round trips on asyncpg (begin, ping, rollback) for
    each request; under load a connection is back in use within milliseconds, so this pings almost never. A
    connection that died while idle for less than that is met by its request, which fails, and SQLAlchemy then
    replaces the whole pool.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("idle_since", math.inf) < IDLE_BEFORE_PING:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("a pooled connection did not answer its ping") from exc  # the pool reconnects


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}[parsed.get_backend_name()]
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose `after_commit` callbacks run once the transaction is durable, never on rollback."""

    class ServiceSession(Session):
        pass

    @event.listens_for(ServiceSession, "after_commit")
    def _run_after_commit(session: Session) -> None:
        for callback in session.info.pop("after_commit", []):
            callback()

    @event.listens_for(ServiceSession, "after_rollback")
    def _drop_on_rollback(session: Session) -> None:
        session.info.pop("after_commit", None)

    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=ServiceSession)


def after_commit(session: AsyncSession, callback: Callable[[], Any]) -> None:
    """Queue `callback` to run after this session commits (dropped if it rolls back)."""
    session.info.setdefault("after_commit", []).append(callback)


P = ParamSpec("P")
T = TypeVar("T")
CAS_ATTEMPTS = 12
# Losers of one round wait a random moment before the next, so twenty writers do not collide again in step.
CAS_BACKOFF_SECONDS = 0.01
# PostgreSQL's serialization failure and deadlock: the transaction did nothing and may simply run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def lost_race(exc: Exception) -> bool:
    """True if `exc` says a concurrent transaction won: a compare-and-set matched no row, or PostgreSQL
    aborted this transaction to let another one through."""
    if isinstance(exc, StaleDataError):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        return getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES or getattr(orig, "pgcode", None) in (
            RETRYABLE_SQLSTATES
        )
    return False


def retry_on_conflict(use_case: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run a use case again, from a fresh read, when its compare-and-set lost to a concurrent write.

    Versioned rows are written `UPDATE … WHERE id = :id AND version = :read` (the mapper's `version_id_col`),
    so the database decides who wins; the loser's transaction rolls back whole (its events and history too)
    and its checks run again on the winner's state: a stale `If-Match` becomes 412, a spent transition 409,
    and a change that asked for no precondition is applied on top, under a version of its own.
    """

    @functools.wraps(use_case)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        session: AsyncSession = kwargs["session"]
        for attempt in range(1, CAS_ATTEMPTS):
            try:
                return await use_case(*args, **kwargs)
            except Exception as exc:
                if not lost_race(exc):
                    raise
                await session.rollback()
                session.expunge_all()
                await asyncio.sleep(random.uniform(0, CAS_BACKOFF_SECONDS * attempt))
        return await use_case(*args, **kwargs)

    return run


def upsertable_insert(session: AsyncSession, model: type):
    """An INSERT of `model` that takes `on_conflict_do_nothing` / `on_conflict_do_update` on this session's
    database (PostgreSQL and SQLite spell them alike, from their own dialects)."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


async def insert_if_absent(session: AsyncSession, model: type, **values: Any) -> None:
    """INSERT … ON CONFLICT DO NOTHING on either database (the row may exist: that is fine)."""
    await session.execute(upsertable_insert(session, model).values(**values).on_conflict_do_nothing())


async def keep_newer(session: AsyncSession, model: type, *, id: str, version: int, **values: Any) -> bool:
    """Store a projection row from a snapshot if it is newer than the row held; True if stored.

    `model` maps `version` as its `version_id_col`, so the update is a compare-and-set: of two newer snapshots
    applied at once (two replicas), the one committed second fails, is redelivered, and then finds it is not newer.
    """
    held = await session.get(model, id)
    if held is not None and held.version >= version:
        return False
    if held is None:
        session.add(model(id=id, version=version, **values))
    else:
        for key, value in {"version": version, **values}.items():
            setattr(held, key, value)
    return True


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class UtcDateTime(TypeDecorator):
    """A timestamp stored with its zone and always read back as aware UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
