"""Profile use cases. Each takes a session and the caller; every change bumps the version,
records its history and stages the city's event in the same transaction."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple

from sqlalchemy import Select, String, and_, cast, exists, func, insert, intersect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from citypair_profiles.models import City, CityChange, CityCorridor, CityTheme, Outbox, Partnership
from citypair_profiles.partnering import Candidate, Gazetteer, match_pairs
from citypair_profiles.schemas import (
    CityCreate,
    CityFields,
    CityOut,
    CityPoint,
    CityUpdate,
    ImportReport,
    ImportRow,
    SortKey,
)
from citypair_profiles.tabular import ImportedRow, Upload
from citypair_shared import bulk
from citypair_shared.auth import Principal, forbidden
from citypair_shared.db import retry_on_conflict
from citypair_shared.events import CityRegistered, CityRetired, CitySnapshot, CityUpdated, new_event
from citypair_shared.geography import INDICATORS
from citypair_shared.idempotency import Claim
from citypair_shared.outbox import OutboxRelay
from citypair_shared.problems import Problem, not_found, rule_error
from citypair_shared.text import fold, search_text
from citypair_shared.upload import Media, finish, validated
from citypair_shared.versions import check_if_match

SOURCE = "/citypair/profiles"
STALE_AFTER = timedelta(days=365)
# Rows an import parses, validates and writes at a time, and cities an export reads at a time: small enough
# that a batch's work holds the event loop briefly, and memory for a few megabytes. An export's batch is made into
# objects and rows on the loop (~0.8 ms a city): at 500 the directory waited ~300 ms behind each one.
IMPORT_BATCH = 250
EXPORT_BATCH = 100
INSERT_CHUNK = 500  # rows of one table an import writes with one INSERT (a city is ~20 rows: themes, corridors…)
MATCH_KEYS = ("id", "geonames_id", "external_id")  # what makes an import row update a city, in this order
# Fields a PATCH may clear with null; for the others null means "leave as is".
NULLABLE = frozenset({"local_name", "admin_region", "timezone"})
# Anyone signed in reads a city's history, and only those who may edit the city see its contacts:
# history records that they changed, never what they were or became.
PRIVATE_IN_HISTORY = frozenset({"contacts"})


def is_stale(city: City, now: datetime | None = None) -> bool:
    return city.last_confirmed_at < (now or datetime.now(UTC)) - STALE_AFTER


def may_edit(user: Principal, city_id: str) -> bool:
    """Coordinators and admins edit any profile; an official only their own cities'."""
    return user.has_role("admin", "coordinator") or user.official_of(city_id)


def may_publish(user: Principal, city_id: str) -> bool:
    """What a city publishes as open data is its own choice: its officials make it (admins may, for them)."""
    return user.has_role("admin") or user.official_of(city_id)


def fields_of(city: City) -> dict:
    """The editable fields as plain JSON values (for diffs, snapshots and exports)."""
    return {
        "name": city.name,
        "local_name": city.local_name,
        "alternate_names": list(city.alternate_names),
        "country_code": city.country_code,
        "admin_region": city.admin_region,
        "latitude": city.latitude,
        "longitude": city.longitude,
        "population": city.population,
        "timezone": city.timezone,
        "geonames_id": city.geonames_id,
        "external_id": city.external_id,
        "themes": {
            t.theme: {"offer": t.offer, "need": t.need, "notes": t.notes, "key_projects": list(t.key_projects)}
            for t in city.themes
        },
        "indicators": dict(city.indicators),
        "languages": list(city.languages),
        "corridors": [c.corridor for c in city.corridors],
        "capacity": city.capacity,
        "preferred_countries": list(city.preferred_countries),
        "excluded_countries": list(city.excluded_countries),
        "contacts": dict(city.contacts),
        "demo": city.demo,
        "public_fields": list(city.public_fields),
    }


def _json_fields(data: dict) -> dict:
    """Input values (already validated) in the stored JSON shape."""
    out = dict(data)
    if "indicators" in out and out["indicators"] is not None:
        out["indicators"] = {
            k: {"value": v["value"], "unit": INDICATORS[k][1], "year": v["year"]} for k, v in out["indicators"].items()
        }
    if "contacts" in out and out["contacts"] is not None:
        out["contacts"] = {k: v for k, v in out["contacts"].items() if v is not None}
    return out


def _apply(city: City, data: dict) -> dict:
    """Set the given fields; returns {field: [old, new]} for those that changed."""
    before = fields_of(city) if city.id else {}
    data = _json_fields(data)
    for key, value in data.items():
        if key == "themes":
            city.themes = [
                CityTheme(
                    theme=theme,
                    offer=levels.get("offer", 0),
                    need=levels.get("need", 0),
                    notes=levels.get("notes", ""),
                    key_projects=levels.get("key_projects", []),
                )
                for theme, levels in sorted(value.items())
            ]
        elif key == "corridors":
            city.corridors = [CityCorridor(corridor=c) for c in sorted(set(value))]
        else:
            setattr(city, key, value)
    city.search_text = search_text(city.name, city.local_name, alternates=city.alternate_names)
    after = fields_of(city)
    return {k: [before.get(k), after[k]] for k in data if before.get(k) != after[k]}


async def partners_of(session: AsyncSession, city_ids: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {c: [] for c in city_ids}
    if not city_ids:
        return result
    for chunk in (city_ids[i : i + 500] for i in range(0, len(city_ids), 500)):
        rows = await session.execute(
            select(Partnership.city_a, Partnership.city_b).where(
                or_(Partnership.city_a.in_(chunk), Partnership.city_b.in_(chunk))
            )
        )
        for a, b in rows:
            if a in result:
                result[a].append(b)
            if b in result:
                result[b].append(a)
    return {c: sorted(set(p)) for c, p in result.items()}


def snapshot(city: City, partner_ids: list[str]) -> CitySnapshot:
    fields = fields_of(city)
    for private in ("contacts", "external_id", "public_fields"):
        fields.pop(private)
    fields["themes"] = {t: {"offer": v["offer"], "need": v["need"]} for t, v in fields["themes"].items()}
    return CitySnapshot(
        id=city.id,
        version=city.version,
        status=city.status,
        verified=city.verified,
        partner_ids=partner_ids,
        last_confirmed_at=city.last_confirmed_at,
        **fields,
    )


def to_out(city: City, partner_ids: list[str], user: Principal) -> CityOut:
    fields = fields_of(city)
    if not may_edit(user, city.id):
        fields["contacts"] = None
    return CityOut(
        id=city.id,
        version=city.version,
        status=city.status,
        verified=city.verified,
        verified_by=city.verified_by,
        verified_at=city.verified_at,
        last_confirmed_at=city.last_confirmed_at,
        stale=is_stale(city),
        partner_ids=partner_ids,
        created_at=city.created_at,
        updated_at=city.updated_at,
        **fields,
    )


def for_history(changes: dict) -> dict:
    """The changes as history keeps them: private fields only as "changed"."""
    return {k: "changed" if k in PRIVATE_IN_HISTORY else v for k, v in changes.items()}


async def _record(
    session: AsyncSession,
    relay: OutboxRelay,
    city: City,
    *,
    action: str,
    actor: str | None,
    changes: dict,
    event=CityUpdated,
    partner_ids: list[str] | None = None,
) -> None:
    """History row + event for a change already applied to `city`."""
    # Set here rather than by the column's onupdate, so nothing is re-read after commit: the answer then
    # shows this change and its version, not a later one another request committed meanwhile.
    city.updated_at = datetime.now(UTC)
    session.add(
        CityChange(city_id=city.id, version=city.version, action=action, actor_id=actor, changes=for_history(changes))
    )
    if partner_ids is None:
        partner_ids = (await partners_of(session, [city.id]))[city.id]
    relay.add(session, new_event(event(city=snapshot(city, partner_ids)), source=SOURCE, subject=city.id))


def _duplicate(field: str, value) -> Problem:
    return Problem(
        409,
        "Duplicate",
        f"a city with {field} {value!r} exists",
        type_="/problems/duplicate",
        errors=[{"field": field, "message": "already used by another city", "type": "/problems/duplicate"}],
    )


async def _check_unique(session: AsyncSession, city_id: str | None, data: dict) -> None:
    for field in ("geonames_id", "external_id"):
        value = data.get(field)
        if value is not None:
            other = await session.scalar(select(City.id).where(getattr(City, field) == value))
            if other and other != city_id:
                raise _duplicate(field, value)


@asynccontextmanager
async def _naming_a_taken_id(session: AsyncSession, city_id: str | None, data: dict):
    """Around a write and its commit: if another city took the GeoNames or external id between the check and
    the write (the unique index decided, at a flush or at the commit), 409 naming the field."""
    try:
        yield
    except IntegrityError:
        await session.rollback()
        await _check_unique(session, city_id, data)
        raise


def _new_city(status: str) -> City:
    now = datetime.now(UTC)
    return City(
        id="",
        version=1,
        status=status,
        verified=False,
        last_confirmed_at=now,
        created_at=now,  # not left to the server: the answer is made from this object, with nothing read back
        themes=[],
        corridors=[],
        public_fields=[],
    )


async def create(*, session: AsyncSession, relay: OutboxRelay, user: Principal, data: CityCreate) -> City:
    values = data.model_dump(mode="json", exclude={"draft"})
    await _check_unique(session, None, values)
    city = _new_city("draft" if data.draft else "published")
    changes = _apply(city, values)
    city.id = str(uuid.uuid4())
    async with _naming_a_taken_id(session, None, values):
        session.add(city)
        await _record(
            session,
            relay,
            city,
            action="created",
            actor=user.user_id,
            changes=changes,
            event=CityRegistered,
            partner_ids=[],
        )
        await session.commit()
    return city


async def get(*, session: AsyncSession, city_id: str) -> City:
    city = await session.get(City, city_id)
    if city is None:
        raise not_found("city", city_id)
    return city


@retry_on_conflict
async def update(
    *,
    session: AsyncSession,
    relay: OutboxRelay,
    user: Principal,
    city_id: str,
    data: CityUpdate | CityFields,
    if_match: str | None,
) -> City:
    """PATCH (a `CityUpdate`: given fields) or PUT (a `CityFields`: every field); 412 if `if_match` is stale."""
    city = await get(session=session, city_id=city_id)
    if not may_edit(user, city_id):
        raise forbidden("officials edit only the profiles of their own cities")
    if getattr(data, "public_fields", None) is not None and not may_publish(user, city_id):
        detail = "only the city's officials (or an admin) choose its public fields"
        raise forbidden(detail, errors=[{"field": "public_fields", "message": detail}])
    if city.status == "retired":
        raise Problem(409, "Retired", "a retired profile cannot be edited", type_="/problems/state")
    check_if_match(version=city.version, if_match=if_match, what="profile")
    partial = isinstance(data, CityUpdate)
    values = data.model_dump(mode="json", exclude_unset=partial)
    values = {k: v for k, v in values.items() if v is not None or k in NULLABLE}
    await _check_unique(session, city.id, values)
    async with _naming_a_taken_id(session, city.id, values):
        changes = _apply(city, values)
        if changes:
            city.version += 1
            await _record(session, relay, city, action="updated", actor=user.user_id, changes=changes)
        await session.commit()
    return city


@retry_on_conflict
async def change_status(
    *, session: AsyncSession, relay: OutboxRelay, user: Principal, city_id: str, action: str, if_match: str | None
) -> City:
    """publish (draft → published), retire (→ retired), verify, confirm (still accurate as of now)."""
    city = await get(session=session, city_id=city_id)
    check_if_match(version=city.version, if_match=if_match, what="profile")
    now = datetime.now(UTC)
    event = CityUpdated
    if action == "confirm":
        if not may_edit(user, city_id):
            raise forbidden("only the city's officials, coordinators and admins confirm a profile")
        changes = {"last_confirmed_at": [city.last_confirmed_at.isoformat(), now.isoformat()]}
        city.last_confirmed_at = now
    elif not user.has_role("admin", "coordinator"):
        raise forbidden(f"only coordinators and admins {action} profiles", required_roles=["admin", "coordinator"])
    elif action == "verify":
        changes = {"verified": [city.verified, True]}
        city.verified, city.verified_by, city.verified_at = True, user.user_id, now
    else:
        allowed = {"publish": ("draft", "published"), "retire": (None, "retired")}[action]
        if city.status == "retired" or (allowed[0] and city.status != allowed[0]):
            raise Problem(
                409,
                "Not allowed in this state",
                f"a {city.status} profile cannot be {action}ed",
                type_="/problems/state",
                status_now=city.status,
            )
        changes = {"status": [city.status, allowed[1]]}
        city.status = allowed[1]
        event = CityRetired if action == "retire" else CityUpdated
    city.version += 1
    await _record(session, relay, city, action=action, actor=user.user_id, changes=changes, event=event)
    await session.commit()
    return city


async def history(*, session: AsyncSession, city_id: str, limit: int, offset: int) -> tuple[list[CityChange], int]:
    await get(session=session, city_id=city_id)
    query = select(CityChange).where(CityChange.city_id == city_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(CityChange.seq.desc()).limit(limit).offset(offset))
    return list(rows), total


@dataclass(frozen=True)
class DirectoryFilter:
    q: str | None = None
    country: str | None = None
    corridor: str | None = None
    offers: tuple[tuple[str, int], ...] = ()
    needs: tuple[tuple[str, int], ...] = ()
    population_min: int | None = None
    population_max: int | None = None
    status: str | None = None
    verified: bool | None = None
    stale: bool | None = None


_SORTS = {
    SortKey.name: (City.name, City.id),
    SortKey.name_desc: (City.name.desc(), City.id),
    SortKey.population: (City.population, City.id),
    SortKey.population_desc: (City.population.desc(), City.id),
    SortKey.updated: (City.updated_at, City.id),
    SortKey.updated_desc: (City.updated_at.desc(), City.id),
    SortKey.country: (City.country_code, City.name, City.id),
}


def _theme_levels(f: DirectoryFilter) -> list:
    """Each theme-level filter as a condition on one `city_theme` row."""
    return [
        and_(CityTheme.theme == theme, getattr(CityTheme, column) >= level)
        for column, wanted in (("offer", f.offers), ("need", f.needs))
        for theme, level in wanted
    ]


def directory_query(f: DirectoryFilter) -> Select:
    """The cities `f` chooses. A page in name order probes each city's themes as it reaches them, and stops at its
    last row."""
    query = select(City)
    if f.q:
        query = query.where(City.search_text.contains(fold(f.q), autoescape=True))
    if f.country:
        query = query.where(City.country_code == f.country.upper())
    if f.corridor:
        query = query.where(exists().where(CityCorridor.city_id == City.id, CityCorridor.corridor == f.corridor))
    for at_level in _theme_levels(f):
        query = query.where(exists().where(CityTheme.city_id == City.id, at_level))
    if f.population_min is not None:
        query = query.where(City.population >= f.population_min)
    if f.population_max is not None:
        query = query.where(City.population <= f.population_max)
    if f.status:
        query = query.where(City.status == f.status)
    if f.verified is not None:
        query = query.where(City.verified.is_(f.verified))
    if f.stale is not None:
        cutoff = datetime.now(UTC) - STALE_AFTER
        query = query.where(City.last_confirmed_at < cutoff if f.stale else City.last_confirmed_at >= cutoff)
    return query


def directory_count(f: DirectoryFilter) -> Select:
    """How many cities `f` chooses. A theme level is read as one range of its index; where themes are all `f`
    asks, the count is of those ranges alone (a city has one row a theme), not of cities checked one by one (at
    60,000 cities on SQLite, `offers=ai:3`: 25.7 → 1.5 ms)."""
    levels = [select(CityTheme.city_id).where(at_level) for at_level in _theme_levels(f)]
    if levels and replace(f, offers=(), needs=()) == DirectoryFilter():
        chosen = levels[0] if len(levels) == 1 else intersect(*levels)
        return select(func.count()).select_from(chosen.subquery())
    query = directory_query(replace(f, offers=(), needs=()))
    for chosen in levels:
        query = query.where(City.id.in_(chosen))
    return select(func.count()).select_from(query.subquery())


class Version(NamedTuple):
    """Which city at which version a read sends (and whether it is stale): what names its rendered card."""

    id: str
    version: int
    last_confirmed_at: datetime


VERSION_COLUMNS = (City.id, City.version, City.last_confirmed_at)


async def directory(
    *, session: AsyncSession, filters: DirectoryFilter, sort: SortKey, limit: int, offset: int
) -> tuple[list[Version], int]:
    """A page of the directory and the total. A page shorter than `limit` (not past the end) is the last one: its
    rows say the total, and the count is not run (a search finding a few cities scans the names once, not twice)."""
    page = directory_query(filters).with_only_columns(*VERSION_COLUMNS).order_by(*_SORTS[sort])
    rows = [Version(*row) for row in await session.execute(page.limit(limit).offset(offset))]
    if len(rows) < limit and (rows or offset == 0):
        return rows, offset + len(rows)
    return rows, await session.scalar(directory_count(filters))


async def points_state(session: AsyncSession) -> str:
    """A tag of every city's state: each change bumps one city's version, so any change changes the sum."""
    count, versions = (await session.execute(select(func.count(), func.coalesce(func.sum(City.version), 0)))).one()
    return f"{count}-{versions}"


async def points(*, session: AsyncSession, limit: int, offset: int) -> tuple[list[CityPoint], int]:
    """Published cities by id, as a map draws them: a few column reads per page, no profile objects.

    A page is a range of ids, so its themes, corridors and partnerships are read as ranges of their primary keys,
    and a city's themes and corridors come as one string each: a row per city, not one per theme (at 25,000
    cities on SQLite, an `IN` over the page's ids and a row per theme took about a second a page).
    """
    published = select(City.id).where(City.status == "published")
    cities = (
        await session.execute(
            select(City.id, City.name, City.country_code, City.latitude, City.longitude)
            .where(City.status == "published")
            .order_by(City.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    total = await session.scalar(select(func.count()).select_from(published.subquery()))
    if not cities:
        return [], total
    first, last = cities[0].id, cities[-1].id
    levels = CityTheme.theme + ":" + cast(CityTheme.offer, String) + ":" + cast(CityTheme.need, String)
    themes = dict(
        (
            await session.execute(
                select(CityTheme.city_id, func.aggregate_strings(levels, ","))
                .where(CityTheme.city_id.between(first, last), or_(CityTheme.offer > 0, CityTheme.need > 0))
                .group_by(CityTheme.city_id)
            )
        ).all()
    )
    corridors = dict(
        (
            await session.execute(
                select(CityCorridor.city_id, func.aggregate_strings(CityCorridor.corridor, ","))
                .where(CityCorridor.city_id.between(first, last))
                .group_by(CityCorridor.city_id)
            )
        ).all()
    )
    partners: dict[str, set[str]] = {}
    pairs = select(Partnership.city_a, Partnership.city_b).where(
        or_(Partnership.city_a.between(first, last), Partnership.city_b.between(first, last))
    )
    for a, b in await session.execute(pairs):
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    items = []
    for city_id, name, country, latitude, longitude in cities:
        levels_of = [entry.split(":") for entry in themes[city_id].split(",")] if city_id in themes else []
        items.append(
            CityPoint(
                id=city_id,
                name=name,
                country_code=country,
                latitude=latitude,
                longitude=longitude,
                offers={theme: int(offer) for theme, offer, _ in levels_of if offer != "0"},
                needs={theme: int(need) for theme, _, need in levels_of if need != "0"},
                corridors=sorted(corridors[city_id].split(",")) if city_id in corridors else [],
                partner_ids=sorted(partners.get(city_id, ())),
            )
        )
    return items, total


async def export(
    *, session: AsyncSession, filters: DirectoryFilter, sort: SortKey
) -> AsyncIterator[list[tuple[City, list[str]]]]:
    """The filtered directory in `sort` order, EXPORT_BATCH cities (with their partners) at a time.

    Read through one server-side cursor (`yield_per`): one batch is in memory at a time, whatever the size.
    """
    query = directory_query(filters).order_by(*_SORTS[sort]).execution_options(yield_per=EXPORT_BATCH)
    result = await session.stream_scalars(query)
    async for cities in result.partitions():
        partners = await partners_of(session, [c.id for c in cities])
        yield [(c, partners[c.id]) for c in cities]


def open_query(*, country: str | None = None, q: str | None = None) -> Select:
    """Published cities (the only ones open data shows), by name, filtered by country and name."""
    return directory_query(DirectoryFilter(q=q, country=country, status="published")).order_by(City.name, City.id)


async def _open_cities(session: AsyncSession, cities: Iterable[City]) -> list[dict]:
    """Each published city as open data: id, name and country, and exactly the fields it made public (its partners
    only among the published cities)."""
    cities = list(cities)
    sharing = [c.id for c in cities if "partner_ids" in c.public_fields]
    partners = await partners_of(session, sharing)
    named = sorted({p for ids in partners.values() for p in ids})
    published = set()
    for chunk in (named[i : i + 500] for i in range(0, len(named), 500)):
        published |= set(await session.scalars(select(City.id).where(City.id.in_(chunk), City.status == "published")))
    out = []
    for city in cities:
        fields = fields_of(city) | {"partner_ids": [p for p in partners.get(city.id, ()) if p in published]}
        public = {f: fields[f] for f in city.public_fields}
        out.append({"id": city.id, "name": city.name, "country_code": city.country_code} | public)
    return out


async def open_cities(*, session: AsyncSession, country: str | None, q: str | None, limit: int, offset: int):
    query = open_query(country=country, q=q)
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = await session.scalars(query.limit(limit).offset(offset))
    return await _open_cities(session, rows), total


async def open_export(*, session: AsyncSession) -> AsyncIterator[list[dict]]:
    """Every published city as open data, EXPORT_BATCH at a time through one server-side cursor."""
    result = await session.stream_scalars(open_query().execution_options(yield_per=EXPORT_BATCH))
    async for cities in result.partitions():
        yield await _open_cities(session, cities)


async def open_partnerships(*, session: AsyncSession) -> AsyncIterator[list[dict]]:
    """Partnerships between two published cities, one of which made its partners public, EXPORT_BATCH at a time."""
    a, b = aliased(City), aliased(City)
    query = (
        select(Partnership.city_a, Partnership.city_b, Partnership.source, a.public_fields, b.public_fields)
        .join(a, a.id == Partnership.city_a)
        .join(b, b.id == Partnership.city_b)
        .where(a.status == "published", b.status == "published")
        .order_by(Partnership.city_a, Partnership.city_b)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    result = await session.stream(query)
    async for rows in result.partitions():
        yield [
            {"city_a": city_a, "city_b": city_b, "source": source}
            for city_a, city_b, source, public_a, public_b in rows
            if "partner_ids" in public_a or "partner_ids" in public_b
        ]


def import_file(
    claim: Claim | None,
    database_url: str,
    user: Principal,
    body: bytes,
    media: Media,
    max_rows: int,
    all_or_nothing: bool,
) -> tuple[ImportReport, Claim | None]:
    """An uploaded file, checked whole (BadFile, TooManyRows, BadJson) and imported: in the bulk worker process
    (citypair_shared.bulk), whose outbox rows the service's relay publishes once woken."""
    upload = Upload(body, media)
    upload.check(max_rows)
    relay = OutboxRelay(None, Outbox, None, sweep_seconds=0)  # stages events only: the service's relay sends them
    use_case = partial(import_rows, relay=relay, user=user, rows=upload, all_or_nothing=all_or_nothing)
    return bulk.with_session(database_url, use_case, claim)


@retry_on_conflict
async def import_rows(
    *, session: AsyncSession, relay: OutboxRelay, user: Principal, rows: Iterable[ImportedRow], all_or_nothing: bool
) -> ImportReport:
    """Validate every row; create or update (by id, GeoNames id or external id) the good ones.

    Good rows are kept when others fail, unless `all_or_nothing`: then one bad row keeps them all out.
    `rows` is read IMPORT_BATCH at a time, parsed and validated in a worker thread, and each batch is written
    (not committed) before the next is read: memory holds a batch and the report, whatever the file's size.
    """
    report: list[ImportRow] = []
    source = iter(rows)
    while batch := await asyncio.to_thread(validated, source, IMPORT_BATCH, lambda _: CityCreate):
        report += await _import_batch(session, relay, user, batch)
    return await finish(session, report, all_or_nothing=all_or_nothing)


async def _import_batch(
    session: AsyncSession, relay: OutboxRelay, user: Principal, batch: list[tuple[ImportedRow, CityCreate | list[dict]]]
) -> list[ImportRow]:
    """Write one batch of validated rows (flushed, not committed); returns their report rows."""
    report = [ImportRow(line=row.line, action="rejected", errors=data) for row, data in batch if isinstance(data, list)]
    valid = [(row, data) for row, data in batch if isinstance(data, CityCreate)]
    existing = await _existing_for_import(session, valid)
    cities = {city.id: city for city in existing.values()}
    seen: dict[tuple[str, object], str] = {}  # (key, value) -> city id, for rows of this batch repeating a key
    new_cities: dict[str, CityCreate] = {}  # city id -> its row's profile: the last row wins
    for row, data in valid:
        values = data.model_dump(mode="json", exclude={"draft"}, exclude_unset=True)
        given = (row.city_id, data.geonames_id, data.external_id)
        keys = [(k, v) for k, v in zip(MATCH_KEYS, given, strict=True) if v is not None]
        named = {seen[k] if k in seen else existing[k].id for k in keys if k in seen or k in existing}
        if len(named) > 1:
            message = "the row's id, geonames_id and external_id name different cities"
            errors = [rule_error(k, message, code="ids_name_different_cities", city_ids=sorted(named)) for k, _ in keys]
            report.append(ImportRow(line=row.line, action="rejected", errors=errors))
            continue
        city_id = named.pop() if named else str(uuid.uuid4())
        if city_id in cities:
            city = cities[city_id]
            changes = _apply(city, _with_theme_texts(city, values))
            if changes:
                city.version += 1
                await _record(session, relay, city, action="imported", actor=user.user_id, changes=changes)
            action = "updated" if changes else "unchanged"
        else:
            new_cities[city_id], action = data, "created"
        for key in keys:
            seen[key] = city_id
        report.append(ImportRow(line=row.line, id=city_id, action=action))
    rows = await asyncio.to_thread(lambda: [_new_city_rows(d, user, city_id=i) for i, d in new_cities.items()])
    await _insert_new_cities(session, relay, rows)
    await session.flush()  # this batch's updates and history go out now, and its objects can be let go
    return report


def _with_theme_texts(city: City, values: dict) -> dict:
    """An import row's themes, each keeping the notes and key projects the city has for it where the row gives
    none (a CSV or XLSX row carries only the levels: an export imported back must not wipe them)."""
    if not values.get("themes"):
        return values
    current = {t.theme: t for t in city.themes}
    themes = {
        theme: {
            **levels,
            "notes": levels.get("notes", current[theme].notes if theme in current else ""),
            "key_projects": levels.get("key_projects", list(current[theme].key_projects) if theme in current else []),
        }
        for theme, levels in values["themes"].items()
    }
    return {**values, "themes": themes}


def _new_city_rows(data: CityCreate, user: Principal, city_id: str | None = None) -> dict:
    """A new city as plain rows for a bulk insert (the ORM's unit of work is too slow for 10,000)."""
    now = datetime.now(UTC)
    fields = _json_fields(data.model_dump(mode="json", exclude={"draft"}))
    city_id = city_id or str(uuid.uuid4())
    themes = fields.pop("themes")
    corridors = sorted(set(fields.pop("corridors")))
    city = {
        **fields,
        "id": city_id,
        "version": 1,
        "status": "draft" if data.draft else "published",
        "verified": False,
        "last_confirmed_at": now,
        "created_at": now,
        "updated_at": now,
        "search_text": search_text(fields["name"], fields["local_name"], alternates=fields["alternate_names"]),
    }
    theme_rows = [{"city_id": city_id, "theme": t, **levels} for t, levels in sorted(themes.items())]
    public = {k: v for k, v in fields.items() if k not in ("contacts", "external_id")}
    snap = CitySnapshot(
        id=city_id,
        version=1,
        status=city["status"],
        verified=False,
        partner_ids=[],
        last_confirmed_at=now,
        themes={t: {"offer": v["offer"], "need": v["need"]} for t, v in themes.items()},
        corridors=corridors,
        **public,
    )
    changes = for_history({k: [None, v] for k, v in {**fields, "themes": themes, "corridors": corridors}.items() if v})
    return {
        "city": city,
        "themes": theme_rows,
        "corridors": [{"city_id": city_id, "corridor": c} for c in corridors],
        "change": {
            "city_id": city_id,
            "version": 1,
            "action": "imported",
            "actor_id": user.user_id,
            "changes": changes,
            "at": now,
        },
        "event": new_event(CityRegistered(city=snap), source=SOURCE, subject=city_id),
    }


async def _insert_new_cities(session: AsyncSession, relay: OutboxRelay, cities: list[dict]) -> None:
    for model, key in ((City, "city"), (CityTheme, "themes"), (CityCorridor, "corridors"), (CityChange, "change")):
        rows = [r for c in cities for r in (c[key] if isinstance(c[key], list) else [c[key]])]
        # Core INSERTs (the ORM's bulk path costs twice as much), a chunk at a time: each chunk's parameters are
        # prepared on the event loop, which serves other requests while the database writes it.
        for chunk in (rows[i : i + INSERT_CHUNK] for i in range(0, len(rows), INSERT_CHUNK)):
            await session.execute(insert(model.__table__), chunk)
    await relay.add_many(session, [c["event"] for c in cities])


async def _existing_for_import(
    session: AsyncSession, rows: list[tuple[ImportedRow, CityCreate]]
) -> dict[tuple[str, object], City]:
    """The cities the rows name, by each of MATCH_KEYS: (key, value) -> city."""
    wanted = {
        "id": {row.city_id for row, _ in rows if row.city_id is not None},
        "geonames_id": {data.geonames_id for _, data in rows if data.geonames_id is not None},
        "external_id": {data.external_id for _, data in rows if data.external_id is not None},
    }
    found: dict[tuple[str, object], City] = {}
    for field, values in wanted.items():
        ordered = sorted(values, key=str)
        for chunk in (ordered[i : i + 500] for i in range(0, len(ordered), 500)):
            for city in await session.scalars(select(City).where(getattr(City, field).in_(chunk))):
                found[(field, getattr(city, field))] = city
    return found


@retry_on_conflict
async def import_partnerships(
    *, session: AsyncSession, relay: OutboxRelay, user: Principal, rows: list[dict], source: str
) -> dict:
    """Record the real partnerships among profiles; unmatched rows are reported, never guessed."""
    cities = list(await session.scalars(select(City).where(City.status != "retired")))
    gazetteer = Gazetteer(
        [
            Candidate(c.id, c.country_code, frozenset(filter(None, c.search_text.split("\n"))), c.latitude, c.longitude)
            for c in cities
        ]
    )
    pairs, unmatched = await asyncio.to_thread(match_pairs, rows, gazetteer)  # CPU work: off the event loop
    existing = {(a, b) for a, b in await session.execute(select(Partnership.city_a, Partnership.city_b))}
    new_pairs = sorted(pairs - existing)
    for a, b in new_pairs:
        session.add(Partnership(city_a=a, city_b=b, source=source))
    await session.flush()
    touched = sorted({c for pair in new_pairs for c in pair})
    partners = await partners_of(session, touched)
    by_id = {c.id: c for c in cities}
    for city_id in touched:
        city = by_id[city_id]
        city.version += 1
        added = sorted({b if a == city_id else a for a, b in new_pairs if city_id in (a, b)})
        await _record(
            session,
            relay,
            city,
            action="partners_imported",
            actor=user.user_id,
            changes={"partner_ids": [None, added]},
            partner_ids=partners[city_id],
        )
    await session.commit()
    return {
        "rows": len(rows),
        "matched": len(rows) - len(unmatched),
        "created": len(new_pairs),
        "unmatched": len(unmatched),
        "unmatched_rows": unmatched[:200],
    }
