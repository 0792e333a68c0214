"""The Users page's cities field: city names or ids, comma-separated or one per line, made into city ids. Pure: the
directory's answers come in; the ids, or why an entry names no one city, come out.

How an entry is read:
- a city id (a UUID) is taken as it is, as the field always took ids;
- a name of one of the user's current cities takes that city. The field shows the user's cities by name, so a
  name that another city shares still saves the same city when it is sent back unchanged (to mean the other city,
  type its id). A name that two of the user's cities share is shown as their ids instead;
- any other name is searched in the directory (`q`): it takes the one city whose name, local name or alternate name
  is the entry, case, accents and apostrophes aside; else the one city the search found.
An entry that matches several cities, or none, is refused, listing the cities found with the ids to type instead.
"""

import re
from dataclasses import dataclass

from babel.lists import format_list

from citypair_shared.text import fold
from citypair_web import i18n
from citypair_web.i18n import N_

CITY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
SEPARATOR = re.compile(r"[,\n]")
# The directory's largest page: the cities (in name order) an entry's search looks through for the one of that
# name; an entry more cities contain, none of these so called, is refused with their count.
SEARCHED = 100
# The cities an error lists (the count says how many more there are).
SHOWN = 5

NO_CITY = N_("No city is called “%(name)s”.")
SEVERAL = N_("“%(name)s” could be %(cities)s: type the ID of the one you mean.")
MANY = N_(
    "%(count)s cities match “%(name)s”, such as %(cities)s: type more of the name, or the ID of the one you mean."
)
CANDIDATE = N_("%(name)s (%(country)s, %(id)s)")


@dataclass(frozen=True)
class Unresolved:
    """An entry that names no one city: the first cities it matches (none at all: no city has that name), of
    `count`."""

    entry: str
    candidates: tuple[dict, ...] = ()
    count: int = 0


def entries(text: str) -> list[str]:
    return [part.strip() for part in SEPARATOR.split(text) if part.strip()]


def is_city_id(entry: str) -> bool:
    return CITY_ID.fullmatch(entry) is not None


def field_value(city_ids: list[str], names: dict[str, str]) -> str:
    """A user's cities as the field shows them: by name where the name reads back as that city, else by id (a city
    whose name is unknown, holds a comma, or is shared by another of the user's cities)."""
    own = _own_names({city_id: names[city_id] for city_id in city_ids if city_id in names})
    return ", ".join(_shown(city_id, names, own) for city_id in city_ids)


def to_search(typed: list[str], current: dict[str, str]) -> list[str]:
    """The entries to search the directory for: neither an id nor the name of one of the user's cities."""
    own = _own_names(current)
    return list(dict.fromkeys(entry for entry in typed if not is_city_id(entry) and fold(entry) not in own))


def resolve(typed: list[str], found: dict[str, dict], current: dict[str, str]) -> tuple[list[str], list[Unresolved]]:
    """Each entry's city id, or why it has none. `found`: the directory's answer (a page: `items`, `total`) to the
    search for each entry of `to_search`; `current`: the names of the user's cities now, by id."""
    own = _own_names(current)
    ids, unresolved = [], []
    for entry in typed:
        city = entry if is_city_id(entry) else own.get(fold(entry)) or _one_city(entry, found[entry])
        if isinstance(city, Unresolved):
            unresolved.append(city)
        else:
            ids.append(city)
    return ids, unresolved


# What goes between two sentences: Chinese writes them one after the other (each ends with 。), no space.
SENTENCE_GAP = {"zh": ""}


def message(unresolved: list[Unresolved], lang: str) -> str:
    """The field's error: a sentence for each entry that names no one city."""
    return SENTENCE_GAP.get(lang, " ").join(_sentence(entry, lang) for entry in unresolved)


def _own_names(current: dict[str, str]) -> dict[str, str]:
    """The user's cities by folded name, of the names only one of them has."""
    by_name: dict[str, list[str]] = {}
    for city_id, name in current.items():
        by_name.setdefault(fold(name), []).append(city_id)
    return {name: ids[0] for name, ids in by_name.items() if len(ids) == 1}


def _shown(city_id: str, names: dict[str, str], own: dict[str, str]) -> str:
    name = names.get(city_id)
    if name is None or SEPARATOR.search(name) or own.get(fold(name)) != city_id:
        return city_id
    return name


def _one_city(entry: str, page: dict) -> str | Unresolved:
    """The city an entry names among those its search found: the one so called, else the only one found."""
    items = page["items"]
    named = [city for city in items if fold(entry) in _names(city)]
    if len(named) == 1:
        return named[0]["id"]
    if len(items) == 1:
        return items[0]["id"]
    if named:
        return Unresolved(entry, tuple(named[:SHOWN]), len(named))
    return Unresolved(entry, tuple(items[:SHOWN]), page["total"])


def _names(city: dict) -> set[str]:
    return {fold(name) for name in (city["name"], city.get("local_name"), *city.get("alternate_names", [])) if name}


def _sentence(unresolved: Unresolved, lang: str) -> str:
    if not unresolved.candidates:
        return i18n.gettext(NO_CITY, lang, name=unresolved.entry)
    cities = format_list(
        [
            i18n.gettext(CANDIDATE, lang, name=city["name"], country=city["country_code"], id=city["id"])
            for city in unresolved.candidates
        ],
        style="or",
        locale=lang,
    )
    if unresolved.count > len(unresolved.candidates):
        count = i18n.number(unresolved.count, lang)
        return i18n.gettext(MANY, lang, name=unresolved.entry, count=count, cities=cities)
    return i18n.gettext(SEVERAL, lang, name=unresolved.entry, cities=cities)
