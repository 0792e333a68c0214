"""What two replicas of a service share: the outbox rows and the migrations (PostgreSQL, as replicas run)."""

import asyncio
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from citypair_cli.stack import SERVICE_BY_NAME
from citypair_shared.outbox import OutboxRelay
from tests.integration.conftest import Outbox
from tests.integration.test_outbox_inbox_bus import city_event, stream_messages
from tests.support import POSTGRES_ADMIN_URL, fresh_database_url, query

pytestmark = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="replicas run on PostgreSQL (CI sets it)")


async def test_two_relays_publish_each_outbox_row_once(session_factory, bus):
    relays = [OutboxRelay(session_factory, Outbox, bus, sweep_seconds=60) for _ in range(2)]
    async with session_factory() as session:
        for _ in range(300):
            relays[0].add(session, city_event())
        await session.commit()
    sent = await asyncio.gather(*(relay.publish_pending() for relay in relays))
    # Without a claim both relays read the same rows: JetStream drops the repeats, but each is sent twice.
    assert sum(sent) == 300, sent
    assert await stream_messages(bus) == 300
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).where(Outbox.published_at.is_(None))) == 0


def test_replicas_migrating_at_once_take_turns(tmp_path):
    spec = SERVICE_BY_NAME["pilot_zones"]
    url = fresh_database_url(spec.name, tmp_path)
    # Processes, as replicas are (Alembic's context is process-global); they wait on one file to start together.
    go = tmp_path / "go"
    script = (
        "import pathlib, sys, time\n"
        "from citypair_shared.migrations import upgrade\n"
        "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.005)\n"
        "upgrade(pathlib.Path(sys.argv[2]), sys.argv[3])\n"
    )
    replicas = [
        subprocess.Popen([sys.executable, "-c", script, str(go), str(spec.directory), url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    time.sleep(2)  # every interpreter started and waiting
    go.touch()
    errors = [p.communicate(timeout=120)[1].decode()[-300:] for p in replicas if p.wait(timeout=120) != 0]
    assert errors == []
    assert query(url, "SELECT count(*) FROM alembic_version") == [(1,)]
