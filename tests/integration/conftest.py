import pytest
from sqlalchemy.orm import DeclarativeBase

from citypair_shared.bus import Bus
from citypair_shared.db import create_engine, create_session_factory, new_metadata
from citypair_shared.inbox import InboxMixin
from citypair_shared.outbox import OutboxMixin
from tests.support import NatsServer, fresh_database_url


class Base(DeclarativeBase):
    metadata = new_metadata()


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


@pytest.fixture
def own_nats(tmp_path):
    """A nats-server this test alone uses, so it may stop and count freely."""
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
async def session_factory(tmp_path):
    engine = create_engine(fresh_database_url("shared", tmp_path))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def bus(own_nats):
    bus = Bus(own_nats.url, max_deliver=2)
    await bus.connect()
    await bus.declare_streams()  # the bus admin's step; this server asks for no password
    yield bus
    await bus.close()
