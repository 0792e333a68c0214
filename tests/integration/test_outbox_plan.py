"""The relay's next batch, in a drain, is read from an index of unsent rows in seq order, in every service's migrated
database (PostgreSQL when configured, else SQLite). PostgreSQL walked the primary key past every published row still
kept: 6.4 ms a batch at 20,000 of them, 0.4 ms from the partial index. SQLite's index on `published_at` already keeps
the unsent rows in seq order (the rowid), so no sort: any index of unsent rows will do there."""

import importlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert, text

from citypair_shared.db import sync_url
from citypair_shared.migrations import upgrade
from citypair_shared.outbox import next_batch
from citypair_shared.services import SERVICE_BY_NAME
from tests.support import fresh_database_url

PUBLISHED, UNSENT = 20_000, 10_000  # a 10,000-city import's events after an earlier import's, kept for days
KEPT = datetime(2026, 11, 30, tzinfo=UTC)  # published, and kept for the retention's days


@pytest.mark.parametrize("service", ["identity", "profiles", "matching", "pilot_zones"])
def test_the_next_batch_reads_the_index_of_unsent_rows(service, tmp_path):
    url = fresh_database_url(service, tmp_path)
    upgrade(SERVICE_BY_NAME[service].directory, url)
    outbox = importlib.import_module(f"{SERVICE_BY_NAME[service].package}.models").Outbox
    engine = create_engine(sync_url(url))
    rows = [
        {
            "event_id": f"e{i}",
            "type": "t",
            "payload": "{}",
            "attempts": 0,
            "published_at": None if i >= PUBLISHED else KEPT,
        }
        for i in range(PUBLISHED + UNSENT)
    ]
    query = str(next_batch(outbox, 100).compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        conn.execute(insert(outbox.__table__), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE outbox"))
            plan = " ".join(conn.execute(text(f"EXPLAIN {query}")).scalars())
        else:
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    engine.dispose()
    if engine.dialect.name == "postgresql":
        assert "ix_outbox_unpublished" in plan, plan
    else:
        assert "USING INDEX ix_outbox_" in plan and "TEMP B-TREE" not in plan, plan
