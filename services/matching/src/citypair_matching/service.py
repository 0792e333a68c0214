"""Matching use cases: keep the projection and the graph, and answer for suggestions."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_matching.core import CityRow, MatchIndex
from citypair_matching.models import CityProjection, Partnership
from citypair_shared.db import after_commit
from citypair_shared.events import CitySnapshot


def _row(city: CitySnapshot) -> CityRow:
    themes = {k: v.model_dump() for k, v in city.themes.items()}
    return CityRow(
        id=city.id,
        version=city.version,
        name=city.name,
        country_code=city.country_code,
        status=city.status,
        themes=themes,
    )


async def apply_snapshot(*, session: AsyncSession, index: MatchIndex, city: CitySnapshot) -> bool:
    """Store the snapshot if it is newer than what the projection holds; True if applied."""
    current = await session.get(CityProjection, city.id)
    if current is not None and current.version >= city.version:
        return False
    values = {"version": city.version, "status": city.status, "snapshot": city.model_dump(mode="json")}
    if current is None:
        session.add(CityProjection(id=city.id, **values))
    else:
        for key, value in values.items():
            setattr(current, key, value)
    after_commit(session, lambda: index.upsert(_row(city)))
    if city.partner_ids:
        await record_partnerships(
            session=session,
            index=index,
            pairs=[(city.id, p) for p in city.partner_ids],
            source="profile",
            reference=city.id,
        )
    return True


def all_pairs(city_ids: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in city_ids for b in city_ids if a < b]


async def record_partnerships(
    *, session: AsyncSession, index: MatchIndex, pairs: list[tuple[str, str]], source: str, reference: str
) -> None:
    """Record each pair as partners (idempotent)."""
    pairs = {tuple(sorted(pair)) for pair in pairs if pair[0] != pair[1]}
    for a, b in sorted(pairs):
        if await session.get(Partnership, (a, b)) is None:
            session.add(Partnership(city_a=a, city_b=b, source=source, reference=reference))
    after_commit(session, lambda: [index.add_partnership(a, b) for a, b in pairs])


async def load_index(*, session: AsyncSession, index: MatchIndex) -> None:
    """Rebuild the in-memory index from this service's own tables (not by replaying events)."""
    for city in await session.scalars(select(CityProjection)):
        index.upsert(_row(CitySnapshot.model_validate(city.snapshot)))
    for edge in await session.scalars(select(Partnership)):
        index.add_partnership(edge.city_a, edge.city_b)
