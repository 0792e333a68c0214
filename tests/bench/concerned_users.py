"""Who an event concerns, among many users (a script, not a test).

    .venv/bin/python tests/bench/concerned_users.py [--users 5000] [--database-url URL]

Makes a fresh identity database (SQLite in a temporary folder unless --database-url names an empty one), adds
`--users` officials of one random city each, then times, for 30 events naming 11 cities each (a new city and its
ten suggested partners), the way notifications find their users (`notifications._concerned`: `user_city`)
against the baseline, the way they did before identity's migration 0007: every enabled user read and filtered in
Python. Prints the median of each and their ratio.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid

from sqlalchemy import select

from citypair_identity.models import User
from citypair_identity.notifications import _concerned
from citypair_shared.db import create_engine, create_session_factory
from citypair_shared.migrations import upgrade
from citypair_shared.services import SERVICE_BY_NAME

EVENTS, CITIES_AN_EVENT = 30, 11


async def every_user_filtered(session, cities: set[str]) -> list[User]:
    users = await session.scalars(select(User).where(User.disabled.is_(False)))
    return [u for u in users if "official" in u.roles and cities & set(u.city_ids)]


async def measure(url: str, users: int) -> dict[str, float]:
    engine = create_engine(url)
    sessions, rng = create_session_factory(engine), random.Random(1)
    try:
        async with sessions() as session:
            session.add_all(
                User(id=str(uuid.uuid4()), email=f"u{i}@bench.citypair", password_hash="-", roles=["official"],
                     city_ids=[f"c{rng.randrange(users)}"], token_version=1)
                for i in range(users)
            )  # fmt: skip
            await session.commit()
        medians = {}
        for name, find in (("every user, filtered in Python (before)", every_user_filtered), ("user_city", _concerned)):
            times = []
            for _ in range(EVENTS):
                cities = {f"c{rng.randrange(users)}" for _ in range(CITIES_AN_EVENT)}
                async with sessions() as session:
                    start = time.perf_counter()
                    await find(session, cities)
                    times.append((time.perf_counter() - start) * 1000)
            medians[name] = statistics.median(times)
        return medians
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='citypair-users-')}/identity.db"
    upgrade(SERVICE_BY_NAME["identity"].directory, url)
    medians = asyncio.run(measure(url, args.users))
    for name, ms in medians.items():
        print(f"{args.users} users, {name}: {ms:.2f} ms an event (median of {EVENTS})")
    before, after = medians.values()
    print(f"ratio: {before / after:.0f}x")
