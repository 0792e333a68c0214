"""profiles' migration 0004 scrubs the contacts that history rows written before it recorded (issue 13)."""

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from citypair_cli.stack import SERVICE_BY_NAME
from citypair_profiles.models import City, CityChange
from citypair_shared.db import sync_url
from citypair_shared.migrations import alembic_config, upgrade
from tests.support import fresh_database_url

PROFILES = SERVICE_BY_NAME["profiles"].directory
CONTACTS = {"office": "Foreign Affairs Office", "email": "fao@xian.example", "phone": "+86 29 0000"}


def test_migration_leaves_only_that_contacts_changed(tmp_path):
    url = fresh_database_url("profiles", tmp_path)
    command.upgrade(alembic_config(PROFILES, url), "0003")
    engine = create_engine(sync_url(url))
    # Today's model also writes the columns added after 0003 (public_fields, 0005, JSON): they stand in for the
    # insert only, and are gone again before the migrations run.
    present = {column["name"] for column in inspect(engine).get_columns("city")}
    later = [column.name for column in City.__table__.columns if column.name not in present]
    with engine.begin() as db:
        for name in later:
            db.exec_driver_sql(f"ALTER TABLE city ADD COLUMN {name} JSON")
    with Session(engine) as session:
        session.add(
            City(
                id="c1", version=3, name="Xi'an", country_code="CN", latitude=34.26, longitude=108.93,
                population=1, contacts=CONTACTS, last_confirmed_at=datetime.now(UTC),
            )
        )  # fmt: skip
        session.flush()
        session.add_all(
            [
                CityChange(city_id="c1", version=1, action="created", changes={"name": [None, "Xi'an"],
                           "contacts": [None, CONTACTS]}),
                CityChange(city_id="c1", version=2, action="updated", changes={"contacts": [CONTACTS, {}]}),
                CityChange(city_id="c1", version=3, action="updated", changes={"population": [1, 2]}),
            ]
        )  # fmt: skip
        session.commit()
    with engine.begin() as db:
        for name in later:
            db.exec_driver_sql(f"ALTER TABLE city DROP COLUMN {name}")

    upgrade(PROFILES, url)

    with Session(engine) as session:
        history = {c.version: c.changes for c in session.scalars(select(CityChange))}
    engine.dispose()
    assert history == {
        1: {"name": [None, "Xi'an"], "contacts": "changed"},
        2: {"contacts": "changed"},
        3: {"population": [1, 2]},
    }
