"""identity's `user_city` and `user_role`: `User.city_ids` and `User.roles` as rows, which notifications and the
user list query instead of reading every user. They follow every write of the lists (the mapper's flush hook),
and migration 0007 fills them from the users already there."""

import asyncio
import json
import uuid

from alembic import command
from sqlalchemy import create_engine, text

from citypair_identity.models import User
from citypair_identity.notifications import _concerned
from citypair_shared.db import create_engine as create_async_engine
from citypair_shared.db import create_session_factory, sync_url
from citypair_shared.migrations import alembic_config, upgrade
from citypair_shared.services import SERVICE_BY_NAME
from tests.support import fresh_database_url, query

IDENTITY = SERVICE_BY_NAME["identity"].directory
INDEXED = "SELECT 'city', user_id, city_id FROM user_city UNION ALL SELECT 'role', user_id, role FROM user_role"


def indexed(url: str) -> set[tuple]:
    return set(query(url, INDEXED))


def from_lists(url: str) -> set[tuple]:
    rows = query(url, "SELECT id, roles, city_ids FROM user_account")
    lists = [(i, *(json.loads(v) if isinstance(v, str) else v for v in values)) for i, *values in rows]
    return {("role", i, r) for i, roles, _ in lists for r in roles} | {
        ("city", i, c) for i, _, cities in lists for c in cities
    }


def user(email: str, roles: list[str], city_ids: list[str], **extra) -> User:
    return User(
        id=str(uuid.uuid4()), email=email, password_hash="-", roles=roles, city_ids=city_ids, token_version=1, **extra
    )


def test_the_rows_follow_each_write_of_the_lists_and_find_the_users_an_event_concerns(tmp_path):
    url = fresh_database_url("identity", tmp_path)
    upgrade(IDENTITY, url)

    async def scenario() -> dict[str, list[str]]:
        engine = create_async_engine(url)
        sessions = create_session_factory(engine)
        try:
            async with sessions() as session:
                a = user("a@x.org", ["official"], ["c1", "c2"])
                b = user("b@x.org", ["official", "observer"], ["c2"])
                coordinator = user("k@x.org", ["coordinator"], [])
                gone = user("d@x.org", ["official"], ["c1"], disabled=True)
                session.add_all([a, b, coordinator, gone])
                await session.commit()
                assert indexed(url) == from_lists(url)
                a.city_ids = ["c3"]  # moved to another city
                b.roles = ["coordinator", "official"]  # gains a role
                await session.commit()
                b.name = "B"  # a change of neither list leaves the rows as they are
                await session.commit()
                assert indexed(url) == from_lists(url)
                found = {
                    "c1": await _concerned(session, {"c1"}),
                    "c2": await _concerned(session, {"c2"}),
                    "c2 or c3": await _concerned(session, {"c2", "c3"}),
                    "c9 with coordinators": await _concerned(session, {"c9"}, coordinators=True),
                }
                return {name: [u.email for u in users] for name, users in found.items()}
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == {
        "c1": [],  # a left it; d is disabled
        "c2": ["b@x.org"],
        "c2 or c3": ["a@x.org", "b@x.org"],
        "c9 with coordinators": ["b@x.org", "k@x.org"],
    }


def test_migration_0007_fills_the_rows_from_the_users_already_there(tmp_path):
    url = fresh_database_url("identity", tmp_path)
    config = alembic_config(IDENTITY, url)
    command.upgrade(config, "0006")
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for i, (roles, cities) in enumerate([(["official"], ["c1", "c2", "c1"]), (["admin", "coordinator"], [])]):
            conn.execute(
                text(
                    "INSERT INTO user_account (id, email, password_hash, roles, city_ids, disabled, name, language, "
                    "token_version) VALUES (:id, :email, '-', :roles, :cities, false, '', 'en', 1)"
                ),
                {"id": f"u{i}", "email": f"u{i}@x.org", "roles": json.dumps(roles), "cities": json.dumps(cities)},
            )
    engine.dispose()
    command.upgrade(config, "head")
    assert indexed(url) == {
        ("city", "u0", "c1"),
        ("city", "u0", "c2"),
        ("role", "u0", "official"),
        ("role", "u1", "admin"),
        ("role", "u1", "coordinator"),
    }
