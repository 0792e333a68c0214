"""The directory's page and total against a plain reading of the same cities, for random filters and pages: the
total comes from a count (of the theme index alone where themes are all a filter asks, or of the cities), or from
the page itself when it is the last one. On the suite's database (PostgreSQL in CI)."""

import asyncio
import random

from sqlalchemy import select

from citypair_profiles.models import City, Outbox
from citypair_profiles.schemas import CityCreate, SortKey
from citypair_profiles.service import DirectoryFilter, _insert_new_cities, _new_city_rows, directory
from citypair_shared.auth import Principal
from citypair_shared.db import create_engine, create_session_factory
from citypair_shared.migrations import upgrade
from citypair_shared.outbox import OutboxRelay
from citypair_shared.services import SERVICE_BY_NAME
from tests.support import city_body, fresh_database_url

COUNTRIES, THEMES = ["CN", "KZ", "UZ"], ["ai", "ecommerce", "iot"]
ADMIN = Principal(user_id="u", email="a@x.org", roles=frozenset({"admin"}), city_ids=frozenset(), token_version=1)


def cities(rng: random.Random, n: int) -> list[CityCreate]:
    return [
        CityCreate(
            **city_body(
                f"City {i:03d}",
                country_code=rng.choice(COUNTRIES),
                population=rng.randint(1, 9) * 100_000,
                themes={t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEMES, 2)},
            )
        )
        for i in range(n)
    ]


def chosen(made: list[CityCreate], f: DirectoryFilter) -> list[str]:
    """The plain reading: the names of the cities `f` chooses, in name order."""

    def level(c: CityCreate, theme: str, column: str) -> int:
        return getattr(c.themes[theme], column) if theme in c.themes else 0

    return sorted(
        c.name
        for c in made
        if (f.country is None or c.country_code == f.country)
        and (f.population_min is None or c.population >= f.population_min)
        and all(level(c, t, "offer") >= n for t, n in f.offers)
        and all(level(c, t, "need") >= n for t, n in f.needs)
    )


def a_filter(rng: random.Random) -> DirectoryFilter:
    def levels() -> tuple:
        return tuple((t, rng.randint(1, 5)) for t in rng.sample(THEMES, rng.choice([0, 0, 1, 2])))

    return DirectoryFilter(
        country=rng.choice([None, None, *COUNTRIES]),
        population_min=rng.choice([None, None, 500_000]),
        offers=levels(),
        needs=levels(),
    )


def test_pages_and_totals_match_a_plain_reading(tmp_path):
    rng = random.Random(5)
    url = fresh_database_url("profiles", tmp_path)
    upgrade(SERVICE_BY_NAME["profiles"].directory, url)
    made = cities(rng, 120)

    async def check() -> int:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        try:
            async with sessions() as session:
                relay = OutboxRelay(None, Outbox, None, sweep_seconds=0)
                await _insert_new_cities(session, relay, [_new_city_rows(c, ADMIN) for c in made])
                await session.commit()
                names = dict((await session.execute(select(City.id, City.name))).all())
            checked = 0
            for _ in range(150):
                f, limit = a_filter(rng), rng.choice([1, 7, 20, 200])
                expected = chosen(made, f)
                offset = rng.choice([0, 0, limit, len(expected), len(expected) + 5, max(len(expected) - 3, 0)])
                async with sessions() as session:
                    rows, total = await directory(
                        session=session, filters=f, sort=SortKey.name, limit=limit, offset=offset
                    )
                assert total == len(expected), (f, limit, offset)
                assert [names[r.id] for r in rows] == expected[offset : offset + limit], (f, limit, offset)
                checked += bool(expected)
            return checked
        finally:
            await engine.dispose()

    assert asyncio.run(check()) > 50  # most filters choose some cities
