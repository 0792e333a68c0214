"""Profile use cases: each takes a session and leaves committing to the caller."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_profiles.models import City
from citypair_profiles.schemas import CityCreate, CityUpdate
from citypair_shared.auth import Principal, forbidden
from citypair_shared.events import CityRegistered, CitySnapshot, CityUpdated, new_event
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, not_found

SOURCE = "/citypair/profiles"


def snapshot(city: City) -> CitySnapshot:
    return CitySnapshot(
        id=city.id,
        version=city.version,
        name=city.name,
        country_code=city.country_code,
        latitude=city.latitude,
        longitude=city.longitude,
        population=city.population,
        status=city.status,
        themes=city.themes,
    )


async def register(*, session: AsyncSession, relay: OutboxRelay, data: CityCreate) -> City:
    """Store a new city and stage `profiles.city.registered.v1` in the same transaction."""
    city = City(
        id=str(uuid.uuid4()),
        version=1,
        status="published",
        **data.model_dump(mode="json"),
    )
    session.add(city)
    relay.add(session, new_event(CityRegistered(city=snapshot(city)), source=SOURCE, subject=city.id))
    await session.commit()
    await session.refresh(city)
    return city


async def get(*, session: AsyncSession, city_id: str) -> City:
    city = await session.get(City, city_id)
    if city is None:
        raise not_found("city", city_id)
    return city


async def list_cities(*, session: AsyncSession, limit: int, offset: int, country: str | None) -> tuple[list[City], int]:
    query = select(City)
    if country:
        query = query.where(City.country_code == country.upper())
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(City.name, City.id).limit(limit).offset(offset))
    return list(rows), total


def may_edit(user: Principal, city_id: str) -> bool:
    """Coordinators and admins edit any profile; an official only their own cities'."""
    return user.has_role("admin", "coordinator") or user.official_of(city_id)


async def update(
    *, session: AsyncSession, relay: OutboxRelay, user: Principal, city_id: str, data: CityUpdate, if_match: str | None
) -> City:
    """Apply the given fields, bump the version and stage `profiles.city.updated.v1`; 412 if `if_match` is stale."""
    city = await get(session=session, city_id=city_id)
    if not may_edit(user, city_id):
        raise forbidden("officials edit only the profiles of their own cities")
    if if_match is not None and if_match.strip() not in (f'"{city.version}"', "*"):
        raise Problem(
            412,
            "Precondition failed",
            f"the profile changed since you read it (now version {city.version}); reload and try again",
            type_="/problems/stale",
            current_version=city.version,
        )
    changes = data.model_dump(mode="json", exclude_unset=True)
    for key, value in changes.items():
        setattr(city, key, value)
    if changes:
        city.version += 1
        relay.add(session, new_event(CityUpdated(city=snapshot(city)), source=SOURCE, subject=city.id))
    await session.commit()
    await session.refresh(city)
    return city
