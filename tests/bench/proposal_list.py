"""What a pilot-zone list page costs pilot_zones, in-process (a script, not a test).

    .venv/bin/python tests/bench/proposal_list.py [--postgres URL] [--pages 500] [--runs 3]

Makes a fresh database with pilot_zones' tables, 40 proposals of two cities each (three transitions each) and the
80 cities they name, then reads the newest 20 as the list route does: `service.list_proposals` (plain Core rows
through the session's connection, the transitions in one statement) and `to_out_many`, against the way it read
them until 2026-12-02 (ORM objects with their transitions loaded by selectin), by turns in one autocommit session
factory. Prints the CPU and wall time a page of each (the best of the runs) and the ratio; both must give equal
pages.
"""

import argparse
import asyncio
import datetime
import os
import sys
import uuid
from functools import partial
from pathlib import Path

from sqlalchemy import func

sys.path.insert(0, str(Path(__file__).resolve().parent))  # capacity.py and turns.py beside this file
from capacity import create_databases, drop_databases  # noqa: E402
from turns import best_by_turns, print_ratio  # noqa: E402

from citypair_pilot_zones import service  # noqa: E402
from citypair_pilot_zones.models import Base, KnownCity, Proposal, Transition  # noqa: E402
from citypair_shared.auth import Principal  # noqa: E402
from citypair_shared.db import create_engine, create_session_factory  # noqa: E402

COORDINATOR = Principal(
    user_id=str(uuid.uuid4()), email="c@example.org", roles=frozenset({"coordinator"}), city_ids=frozenset(),
    token_version=1,
)  # fmt: skip
STALE_AFTER = datetime.timedelta(days=30)


async def seed(factory) -> None:
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    async with factory() as session, session.begin():
        for i in range(40):
            a, b = str(uuid.uuid4()), str(uuid.uuid4())
            for city in (a, b):
                session.add(
                    KnownCity(id=city, version=1, name=f"City {city[:6]}", country_code="KZ", status="published")
                )
            proposal = Proposal(
                id=str(uuid.uuid4()), title=f"Proposal {i}", status="submitted", city_ids=[a, b], lead_city_id=a,
                member_key=",".join(sorted((a, b))), themes=["telemedicine"],
                confirmations={b: {"by": "u", "at": at.isoformat()}},
                milestones=[{"title": "First", "due_date": "2027-01-01", "status": "planned"}],
                created_at=at + datetime.timedelta(minutes=i), last_activity_at=at, updated_at=at,
            )  # fmt: skip
            session.add(proposal)
            for step, (old, new) in enumerate([("draft", "submitted"), ("submitted", "draft"), ("draft", "submitted")]):
                session.add(Transition(proposal_id=proposal.id, from_status=old, to_status=new, actor_id="u",
                                       at=at + datetime.timedelta(seconds=step)))  # fmt: skip


async def plain_rows(factory) -> list:
    async with factory() as session:
        items, _ = await service.list_proposals(session=session, limit=20, offset=0, filters=service.ProposalFilter())
        return await service.to_out_many(session, items, COORDINATOR, stale_after=STALE_AFTER)


async def orm_objects(factory) -> list:
    """The earlier read: Proposal objects (transitions by selectin) and the window count, then the same output."""
    async with factory() as session:
        query = service.filtered(service.ProposalFilter(), datetime.date.today())
        page = query.add_columns(func.count().over()).order_by(Proposal.created_at.desc(), Proposal.id).limit(20)
        proposals = [proposal for proposal, _ in (await session.execute(page)).all()]
        return await service.to_out_many(session, proposals, COORDINATOR, stale_after=STALE_AFTER)


async def main(url: str, pages: int, runs: int) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    factory = create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    reads = {"orm objects": orm_objects, "plain rows": plain_rows}
    try:
        await seed(factory)
        first = [await read(factory) for read in reads.values()]
        assert first[0] == first[1] and len(first[0]) == 20 and all(p.transitions for p in first[0])
        best = await best_by_turns({name: partial(read, factory) for name, read in reads.items()}, pages, runs, "page")
    finally:
        await engine.dispose()
    print_ratio(best, "orm objects", "plain rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("CITYPAIR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--postgres", default=default, help="a PostgreSQL server URL (default: the local one)")
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    urls = create_databases(args.postgres, "list")
    try:
        asyncio.run(main(urls["pilot_zones"], args.pages, args.runs))
    finally:
        drop_databases(args.postgres, urls)
