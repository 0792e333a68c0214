"""Matching real twin-city rows to profiles: by name or alternate name, country and distance. Pure.

A row is matched only when a profile in that country carries the name (folded) and lies within
`MAX_DISTANCE_KM` of the row's coordinates; otherwise it is reported with the reason, never guessed.

The one reading of the twin-city data (`TWIN_CITIES`, its country names, distances): the matching tooling
(`citypair_cli.realism_fit`) joins the same file to GeoNames cities with these functions.
"""

import csv
import io
import itertools
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pycountry

from citypair_profiles.tabular import BadFile, TooManyRows
from citypair_shared.text import fold

TWIN_CITIES = Path(__file__).parent / "data" / "twin_cities" / "twin_cities.csv"
MAX_DISTANCE_KM = 50.0
# Names in the twin-city data that pycountry does not resolve by itself.
COUNTRY_ALIASES = {
    "Russia": "RU",
    "Iran": "IR",
    "Syria": "SY",
    "Vietnam": "VN",
    "South Korea": "KR",
    "North Korea": "KP",
    "Taiwan": "TW",
    "Laos": "LA",
    "Moldova": "MD",
    "Bolivia": "BO",
    "Venezuela": "VE",
    "Tanzania": "TZ",
    "Czech Republic": "CZ",
    "Macedonia": "MK",
    "North Macedonia": "MK",
    "Kosovo": "XK",
    "Palestine": "PS",
    "Ivory Coast": "CI",
    "Brunei": "BN",
    "Cape Verde": "CV",
    "Micronesia": "FM",
    "United Kingdom": "GB",
    "Democratic Republic of the Congo": "CD",
    "Republic of the Congo": "CG",
    "East Timor": "TL",
    "Turkey": "TR",
    "Swaziland": "SZ",
    "Burma": "MM",
    "Vatican City": "VA",
    "The Gambia": "GM",
    "Gambia": "GM",
    "The Bahamas": "BS",
    "Bahamas": "BS",
    "Federated States of Micronesia": "FM",
    "Republic of Ireland": "IE",
}
# Territories without an ISO code of their own, filed under the state they are recognised as part of. The shipped
# realism prior (citypair_matching/data/realism.json) was fitted without their rows: the tooling leaves them out
# (`territories=False`) so that its data stays what the fit says it was; including them is a refit.
TERRITORIES = {
    "Northern Cyprus": "CY",
    "Abkhazia": "GE",
    "South Ossetia": "GE",
    "Transnistria": "MD",
}


@cache
def country_code(name: str, *, territories: bool = True) -> str | None:
    """The ISO 3166 alpha-2 code of a country name of the twin-city data; None if unknown."""
    name = name.strip()
    if name in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[name]
    if name in TERRITORIES:
        return TERRITORIES[name] if territories else None
    try:
        return pycountry.countries.lookup(name).alpha_2
    except LookupError:
        return None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))  # (rounding can pass 1 near the antipode)


@dataclass(frozen=True)
class Candidate:
    id: str
    country_code: str
    names: frozenset[str]  # folded
    latitude: float
    longitude: float


class Gazetteer:
    """Profiles indexed by (country, folded name)."""

    def __init__(self, candidates: list[Candidate]):
        self._by_name: dict[tuple[str, str], list[Candidate]] = {}
        for c in candidates:
            for name in c.names:
                self._by_name.setdefault((c.country_code, name), []).append(c)

    def find(self, name: str, country: str, lat: float, lon: float) -> tuple[Candidate | None, str]:
        """The nearest profile with that name in that country within range, or None and why not."""
        code = country_code(country)
        if code is None:
            return None, f"unknown country {country!r}"
        named = self._by_name.get((code, fold(name)), [])
        if not named:
            return None, f"no profile named {name!r} in {code}"
        nearest = min(named, key=lambda c: distance_km(lat, lon, c.latitude, c.longitude))
        km = distance_km(lat, lon, nearest.latitude, nearest.longitude)
        if km > MAX_DISTANCE_KM:
            return None, f"{name!r} in {code} is {km:.0f} km from the listed place"
        return nearest, ""


def read_twin_rows(text: str, *, max_rows: int) -> list[dict]:
    """Rows of city1,country1,lat1,lng1,city2,country2,lat2,lng2 (the twin_cities.csv format).

    Raises TooManyRows past `max_rows` (having read no more than one row past it), BadFile if it is no such CSV.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    needed = {"city1", "country1", "lat1", "lng1", "city2", "country2", "lat2", "lng2"}
    try:
        if not reader.fieldnames or not needed <= set(reader.fieldnames):
            columns = sorted(needed)
            raise BadFile("needs the columns " + ",".join(columns), code="columns_missing", columns=columns)
        rows = list(itertools.islice(reader, max_rows + 1))
    except csv.Error as exc:
        raise BadFile(f"not CSV (line {reader.line_num}): {exc}", code="not_csv", line=reader.line_num) from exc
    if len(rows) > max_rows:
        raise TooManyRows(max_rows)
    return rows


def match_pairs(rows: list[dict], gazetteer: Gazetteer) -> tuple[set[tuple[str, str]], list[dict]]:
    """Distinct matched pairs (sorted ids) and the unmatched rows with a reason."""
    pairs: set[tuple[str, str]] = set()
    unmatched = []
    for line, row in enumerate(rows, start=2):
        ends = []
        for side in ("1", "2"):
            try:
                lat, lon = float(row[f"lat{side}"]), float(row[f"lng{side}"])
            except (TypeError, ValueError):
                ends.append((None, f"city{side}: bad coordinates"))
                continue
            ends.append(gazetteer.find(row[f"city{side}"], row[f"country{side}"], lat, lon))
        (a, why_a), (b, why_b) = ends
        if a is None or b is None or a.id == b.id:
            reason = "; ".join(r for r in (why_a, why_b) if r) or "both ends are the same profile"
            unmatched.append({"line": line, "city1": row["city1"], "city2": row["city2"], "reason": reason})
            continue
        pairs.add(tuple(sorted((a.id, b.id))))
    return pairs, unmatched
