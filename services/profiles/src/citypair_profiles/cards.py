"""Profiles as reads send them, kept rendered.

A city's version names every field and partner it shows (each change, an import's partnerships included, bumps
it), so the JSON of a profile at a version never goes out of date: a read asks the database only which cities at
which versions, and renders only the versions it has not seen. At 2,000 cities on PostgreSQL a directory page of
twenty went from five statements (the cities, their themes, their corridors, their partners, the count) and twenty
models made and serialised to two statements (the page's ids and versions, the count).
"""

from typing import NamedTuple

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_profiles import service
from citypair_profiles.models import City
from citypair_profiles.schemas import CityOut
from citypair_profiles.service import VERSION_COLUMNS, Version
from citypair_shared.auth import Principal
from citypair_shared.problems import not_found

# Cards one process keeps (a card is 1–4 KB): the busiest cities' current versions; older versions are never asked
# for again and leave first.
CARDS_KEPT = 5000
CITY_JSON = TypeAdapter(CityOut)


class Card(NamedTuple):
    version: int
    json: bytes


class Cards:
    """Rendered profiles by (id, version, contacts shown, stale): contacts depend on who reads, staleness on the
    day, everything else on the version."""

    def __init__(self, kept: int = CARDS_KEPT):
        self._kept = kept
        self._cards: dict[tuple, Card] = {}

    async def of(self, session: AsyncSession, versions: list[Version], user: Principal) -> list[Card]:
        """The cards of `versions`, in their order; a city changed since `versions` were read comes as it is now."""
        keys = [(v.id, v.version, service.may_edit(user, v.id), service.is_stale(v)) for v in versions]
        kept = {key: self._cards[key] for key in keys if key in self._cards}
        missing = [key[0] for key in keys if key not in kept]
        fresh = await self._render(session, missing, user) if missing else {}
        return [kept.get(key) or fresh[key[0]] for key in keys if key in kept or key[0] in fresh]

    async def one(self, session: AsyncSession, city_id: str, user: Principal) -> Card:
        row = (await session.execute(select(*VERSION_COLUMNS).where(City.id == city_id))).one_or_none()
        cards = await self.of(session, [Version(*row)], user) if row else []
        if not cards:
            raise not_found("city", city_id)
        return cards[0]

    async def _render(self, session: AsyncSession, city_ids: list[str], user: Principal) -> dict[str, Card]:
        cities = list(await session.scalars(select(City).where(City.id.in_(city_ids))))
        partners = await service.partners_of(session, city_ids)
        fresh = {}
        for city in cities:
            out = service.to_out(city, partners[city.id], user)
            fresh[city.id] = card = Card(city.version, CITY_JSON.dump_json(out))
            self._keep((city.id, city.version, service.may_edit(user, city.id), out.stale), card)
        return fresh

    def _keep(self, key: tuple, card: Card) -> None:
        self._cards[key] = card
        if len(self._cards) > self._kept:
            del self._cards[next(iter(self._cards))]  # the oldest kept


def page_json(cards: list[Card], *, total: int, limit: int, offset: int) -> bytes:
    """A `Page[CityOut]` of rendered cards, as FastAPI would have serialised it."""
    items = b",".join(card.json for card in cards)
    return b'{"items":[%s],"total":%d,"limit":%d,"offset":%d}' % (items, total, limit, offset)
